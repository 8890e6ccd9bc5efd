// SPDX-License-Identifier: GPL-2.0-or-later
// The floor fimctl is measured against: the unavoidable work of a scan and nothing else.
// A parallel walk with lstat of every entry, then N threads that open, read and SHA-256
// (OpenSSL EVP) every regular file, largest first. No database, no output per file.
// Built and run by scripts/bench: bench-floor [-t THREADS] DIR...
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

struct Walk {
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
          struct stat st;
          if (fstatat(fd, n, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
          ++entries;
          std::string p = d + "/" + n;
          if (S_ISDIR(st.st_mode)) sub.push_back(std::move(p));
          else if (S_ISREG(st.st_mode)) files[tid].push_back({std::move(p), st.st_size});
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
  while ((opt = getopt(argc, argv, "t:")) != -1) {
    if (opt == 't') threads = std::max(1, atoi(optarg));
    else return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Walk w;
  w.files.resize(threads);
  for (int i = optind; i < argc; ++i) w.dirs.push_back(argv[i]);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) ts.emplace_back([&w, i] { w.run(i); });
  for (auto& t : ts) t.join();
  ts.clear();
  std::vector<File> files;
  for (auto& v : w.files) for (auto& f : v) files.push_back(std::move(f));
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
