// SPDX-License-Identifier: GPL-2.0-or-later
// The floor fimctl is measured against: the unavoidable work of a scan and nothing else.
// A parallel walk with lstat of every entry, then N threads that open, read and SHA-256
// (OpenSSL EVP) every regular file, largest first. No database, no output per file.
// -s, the stat floor (what check --fast is measured against): the same walk, each entry
// statx'ed with what fast mode's stat evidence needs (basic stats, birth time, mount id),
// and no file opened or read.
// A root that is not a directory (a file or symlink a policy names) is stat'ed, not walked.
// Built and run by scripts/bench: bench-floor [-s] [-t THREADS] ROOT...
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

struct File {
  std::string path;
  off_t size;
};

// The stat floor asks statx for what the fast check compares; the hash floor keeps the
// plain lstat its published numbers were measured with.
bool stat_entry(int dirfd, const char* name, bool statx_mode, mode_t* mode, off_t* size) {
  if (statx_mode) {
    struct statx sx;
    unsigned mask = STATX_BASIC_STATS | STATX_BTIME;
#ifdef STATX_MNT_ID
    mask |= STATX_MNT_ID;
#endif
    if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, mask, &sx) != 0) return false;
    *mode = sx.stx_mode;
    *size = static_cast<off_t>(sx.stx_size);
    return true;
  }
  struct stat st;
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
  *mode = st.st_mode;
  *size = st.st_size;
  return true;
}

struct Walk {
  bool statx_mode = false;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> dirs;
  int active = 0;
  std::vector<std::vector<File>> files;
  std::atomic<long> entries{0};

  void run(int tid) {
    for (;;) {
      std::string d;
      {
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return !dirs.empty() || active == 0; });
        if (dirs.empty()) return;
        d = std::move(dirs.front());
        dirs.pop_front();
        ++active;
      }
      std::vector<std::string> sub;
      const int fd = open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (DIR* dp = fd >= 0 ? fdopendir(fd) : nullptr) {
        while (const dirent* de = readdir(dp)) {
          const char* n = de->d_name;
          if (n[0] == '.' && (n[1] == 0 || (n[1] == '.' && n[2] == 0))) continue;
          mode_t mode;
          off_t size;
          if (!stat_entry(fd, n, statx_mode, &mode, &size)) continue;
          ++entries;
          std::string p = d + "/" + n;
          if (S_ISDIR(mode)) sub.push_back(std::move(p));
          else if (S_ISREG(mode)) files[tid].push_back({std::move(p), size});
        }
        closedir(dp);
      }
      {
        std::lock_guard lk(mu);
        for (auto& s : sub) dirs.push_back(std::move(s));
        --active;
      }
      cv.notify_all();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  int threads = 2, opt;
  bool stat_only = false;
  while ((opt = getopt(argc, argv, "st:")) != -1) {
    if (opt == 't') threads = std::max(1, atoi(optarg));
    else if (opt == 's') stat_only = true;
    else return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Walk w;
  w.statx_mode = stat_only;
  w.files.resize(threads);
  for (int i = optind; i < argc; ++i) {
    // A root counts as an entry like any other (fimctl records it); only a directory is walked.
    mode_t mode;
    off_t size;
    if (!stat_entry(AT_FDCWD, argv[i], stat_only, &mode, &size)) continue;
    ++w.entries;
    if (S_ISDIR(mode)) w.dirs.push_back(argv[i]);
    else if (S_ISREG(mode)) w.files[0].push_back({argv[i], size});
  }
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back([&w, i] { w.run(i); });
  for (auto& t : ts) t.join();
  ts.clear();
  std::vector<File> files;
  for (auto& v : w.files) for (auto& f : v) files.push_back(std::move(f));
  if (stat_only) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("entries=%ld files=%zu bytes=0 seconds=%.3f\n", w.entries.load(), files.size(), s);
    return 0;
  }
  std::sort(files.begin(), files.end(), [](const File& a, const File& b) { return a.size > b.size; });
  std::atomic<size_t> next{0};
  std::atomic<long long> bytes{0};
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&] {
      std::vector<unsigned char> buf(256 * 1024);
      EVP_MD_CTX* ctx = EVP_MD_CTX_new();
      for (size_t k; (k = next++) < files.size();) {
        const int fd = open(files[k].path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) continue;
        EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
        ssize_t n;
        while ((n = read(fd, buf.data(), buf.size())) > 0) {
          EVP_DigestUpdate(ctx, buf.data(), static_cast<size_t>(n));
          bytes += n;
        }
        close(fd);
        unsigned char md[32];
        unsigned int len;
        EVP_DigestFinal_ex(ctx, md, &len);
      }
      EVP_MD_CTX_free(ctx);
    });
  }
  for (auto& t : ts) t.join();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("entries=%ld files=%zu bytes=%lld seconds=%.3f\n", w.entries.load(), files.size(), bytes.load(), s);
  return 0;
}
