// SPDX-License-Identifier: GPL-2.0-or-later
// `fimctl completion bash|zsh|fish|list` (completion.h). Moved out of options.cpp, which
// defines the commands; one walk of the CLI::App feeds every shell.
#include "completion.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "fim/rules.h"
#include "fim_config.h"

namespace fim::cli {

namespace {

/// Commands a user can type: "" (fimctl itself), "init", "config check", ... Hidden commands
/// (no group, such as `completion`) are left out, and so is everything below them.
void walk_commands(CLI::App* app, const std::string& path, std::vector<std::pair<std::string, CLI::App*>>* out) {
  out->emplace_back(path, app);
  for (auto* sub : app->get_subcommands([](CLI::App* s) { return !s->get_group().empty(); }))
    walk_commands(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

/// Options shown in --help (a hidden one has no group), positional arguments apart.
bool visible_option(CLI::Option* o) { return !o->get_group().empty() && o->nonpositional(); }

/// The names of an option as typed ("-c", "--config"); empty for a positional argument.
std::vector<std::string> option_names(const CLI::Option* o) {
  std::vector<std::string> names;
  for (const auto& s : o->get_snames()) names.push_back("-" + s);
  for (const auto& l : o->get_lnames()) names.push_back("--" + l);
  return names;
}

/// What an option's value is: "" (a flag), "file" (type FILE, PATH or PATH|...), "dir" (DIR),
/// "words:a b c" (the choices of a CLI::IsMember check) or "text" (anything else: N, TEXT,
/// FILE:LINE:COLUMN).
std::string value_kind(CLI::Option* o) {
  if (o->get_expected_max() == 0) return "";
  // get_type_name() is the type name followed by ":" and the description of each check;
  // IsMember describes itself as {a,b,c}.
  std::vector<std::string> descs;
  try {
    for (int i = 0;; ++i) descs.push_back(o->get_validator(i)->get_description());
  } catch (const CLI::OptionNotFound&) {  // past the last check
  }
  std::string type = o->get_type_name(), words;
  for (auto it = descs.rbegin(); it != descs.rend(); ++it) {
    const std::string& desc = *it;
    if (desc.empty()) continue;
    if (desc.size() > 2 && desc.front() == '{' && desc.back() == '}') words = desc.substr(1, desc.size() - 2);
    if (type.size() > desc.size() && type.compare(type.size() - desc.size() - 1, std::string::npos, ":" + desc) == 0)
      type.resize(type.size() - desc.size() - 1);
  }
  if (!words.empty()) {
    std::replace(words.begin(), words.end(), ',', ' ');
    return "words:" + words;
  }
  if (type == "DIR") return "dir";
  if (type == "FILE" || type == "PATH" || type.rfind("PATH|", 0) == 0) return "file";
  return "text";
}

/// The visible options of `app` and of the commands above it (CLI11's fallthrough: they may
/// follow the command), nearest first; an option of a command that repeats one above it
/// (every command's -h,--help) is listed once.
std::vector<CLI::Option*> options_of(CLI::App* app) {
  std::vector<CLI::Option*> out;
  std::vector<std::string> seen;
  for (CLI::App* a = app; a; a = a->get_parent()) {
    for (auto* o : a->get_options(visible_option)) {
      const auto names = option_names(o);
      const auto is_seen = [&](const std::string& n) { return std::find(seen.begin(), seen.end(), n) != seen.end(); };
      if (std::any_of(names.begin(), names.end(), is_seen)) continue;
      seen.insert(seen.end(), names.begin(), names.end());
      out.push_back(o);
    }
  }
  return out;
}

/// The kind (as value_kind) of a command's positional arguments, "" when it takes none.
std::string positional_kind(CLI::App* app) {
  for (auto* o : app->get_options([](CLI::Option* x) { return x->get_positional() && !x->nonpositional(); }))
    return value_kind(o);
  return "";
}

std::string sh_quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

/// `fimctl completion list`: one tab-separated line per name a user can type or write, for
/// the man-page test: "command\tPATH", "option\tCOMMAND\tNAMES\tKIND", "positional\tCOMMAND\tKIND",
/// "key\tTABLE\tKEY" (the policy keys fimctl.toml(5) documents; TABLE as messages name it).
std::string completion_list(CLI::App& app) {
  std::vector<std::pair<std::string, CLI::App*>> cmds;
  walk_commands(&app, "", &cmds);
  std::string out;
  for (const auto& [path, a] : cmds) {
    if (!path.empty()) out += "command\t" + path + "\n";
    for (auto* o : a->get_options(visible_option)) {
      // A command's own -h,--help repeats fimctl's: listed under fimctl only.
      if (a != &app && o == a->get_help_ptr()) continue;
      out += "option\t" + path + "\t" + join(option_names(o)) + "\t" + value_kind(o) + "\n";
    }
    if (const auto k = positional_kind(a); !k.empty()) out += "positional\t" + path + "\t" + k + "\n";
  }
  for (const auto& t : config_keys())
    for (const auto k : t.keys) out += "key\t" + std::string(t.where) + "\t" + std::string(k) + "\n";
  return out;
}

/// A command's data as case statements, one branch per command: the four functions below
/// are the same text in bash and zsh (both run them: `case`, `[[ ]]`, REPLY).
struct ShData {
  std::string subs, opts, values, positionals;
};

/// Quotes for the shell at hand: sh (bash, zsh) or fish (no '\'' in fish: backslashes).
std::string quote(const std::string& s, bool fish) {
  if (!fish) return sh_quote(s);
  std::string q = "'";
  for (const char c : s) q += (c == '\\' || c == '\'') ? std::string("\\") + c : std::string(1, c);
  return q + "'";
}

/// Walks the commands once: for each, its subcommands, its options (and those above it),
/// the kind of each option's value and of its positional arguments, as case branches of
/// bash/zsh (`'cmd') REPLY='...' ;;`) or of fish (`case 'cmd'; echo '...'`).
ShData walk_data(CLI::App& app, bool fish) {
  std::vector<std::pair<std::string, CLI::App*>> cmds;
  walk_commands(&app, "", &cmds);
  const auto branch = [fish](const std::string& patterns, const std::string& value) {
    return fish ? "    case " + patterns + "\n      echo " + quote(value, true) + "\n"
                : "    " + patterns + ") REPLY=" + quote(value, false) + " ;;\n";
  };
  ShData d;
  for (const auto& [path, a] : cmds) {
    std::vector<std::string> names;
    for (auto* s : a->get_subcommands([](CLI::App* x) { return !x->get_group().empty(); }))
      names.push_back(s->get_name());
    if (!names.empty()) d.subs += branch(quote(path, fish), join(names));
    std::vector<std::string> all;
    for (auto* o : options_of(a)) {
      const auto on = option_names(o);
      all.insert(all.end(), on.begin(), on.end());
      if (const auto k = value_kind(o); !k.empty()) {
        std::string patterns;
        for (const auto& n : on) patterns += (patterns.empty() ? "" : (fish ? " " : " | ")) + quote(path + "|" + n, fish);
        d.values += branch(patterns, k);
      }
    }
    d.opts += branch(quote(path, fish), join(all));
    if (const auto k = positional_kind(a); !k.empty()) d.positionals += branch(quote(path, fish), k);
  }
  return d;
}

std::string sh_functions(CLI::App& app) {
  const ShData d = walk_data(app, false);
  return "# Each sets REPLY for a command (\"\" is fimctl itself, \"config check\" a nested one).\n"
         "_fimctl_commands() {  # its subcommands\n  REPLY=\n  case $1 in\n" + d.subs + "  esac\n}\n\n"
         "_fimctl_options() {  # its options and those of the commands above it\n  REPLY=\n  case $1 in\n" +
         d.opts + "  esac\n}\n\n"
         "_fimctl_value() {  # $2's value: file, dir, text or words:LIST; fails for a flag\n"
         "  case \"$1|$2\" in\n" + d.values + "    *) return 1 ;;\n  esac\n}\n\n"
         "_fimctl_positional() {  # its arguments: file, or fails when it takes none\n  case $1 in\n" + d.positionals +
         "    *) return 1 ;;\n  esac\n}\n\n";
}

std::string generated(const char* shell) {
  return std::string("# ") + shell + " completion for fimctl(8), generated by 'fimctl completion " + shell +
         "' (fimctl " FIM_VERSION ")\n# from its command-line definition: regenerate it, do not edit it.\n";
}

/// `fimctl completion bash`: a self-contained script (plain bash; bash-completion loads it on
/// demand from its completions directory but is not needed). _fimctl walks the words typed
/// so far to the command.
std::string completion_bash(CLI::App& app) {
  return generated("bash") + "# shellcheck shell=bash\n\n" + sh_functions(app) +
         R"(_fimctl_complete() {  # $1: a kind as above, $2: the word to complete
  case $1 in
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$2") ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$2") ;;
    words:*) mapfile -t COMPREPLY < <(compgen -W "${1#words:}" -- "$2") ;;
  esac
}

_fimctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev='' cmd='' w i REPLY
  COMPREPLY=()
  # The command so far: words that name a subcommand of it, skipping options and their values
  # ("--db FILE", and "--db = FILE" as bash splits "--db=FILE").
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [[ $w == -* ]]; then
      if _fimctl_value "$cmd" "$w"; then
        ((i++))
        [[ ${COMP_WORDS[i]-} == = ]] && ((i++))
      fi
    else
      _fimctl_commands "$cmd"
      [[ " $REPLY " == *" $w "* ]] && cmd=${cmd:+$cmd }$w
    fi
  done
  [[ $cur == = ]] && cur=''
  ((COMP_CWORD > 1)) && prev=${COMP_WORDS[COMP_CWORD - 1]}
  [[ $prev == = && $COMP_CWORD -gt 2 ]] && prev=${COMP_WORDS[COMP_CWORD - 2]}
  if [[ $prev == -* ]] && _fimctl_value "$cmd" "$prev"; then
    _fimctl_complete "$REPLY" "$cur"
  elif [[ $cur == -* ]]; then
    _fimctl_options "$cmd"
    _fimctl_complete "words:$REPLY" "$cur"
  else
    _fimctl_commands "$cmd"
    if [[ -n $REPLY ]]; then
      _fimctl_complete "words:$REPLY" "$cur"
    elif _fimctl_positional "$cmd"; then
      _fimctl_complete "$REPLY" "$cur"
    fi
  fi
  return 0
}
complete -F _fimctl fimctl
)";
}

/// `fimctl completion zsh`: for an fpath directory as _fimctl (Debian's zsh reads
/// /usr/share/zsh/vendor-completions); sourced after compinit, it registers itself.
std::string completion_zsh(CLI::App& app) {
  return "#compdef fimctl\n" + generated("zsh") + "\n" + sh_functions(app) +
         R"(_fimctl_complete() {  # $1: a kind as above
  case $1 in
    file) _files ;;
    dir) _files -/ ;;
    words:*) compadd -- ${=${1#words:}} ;;
  esac
}

_fimctl() {
  local cmd='' w i=2 REPLY
  # The command so far: words that name a subcommand of it, skipping options and their
  # values ("--db FILE"; zsh keeps "--db=FILE" one word).
  while (( i < CURRENT )); do
    w=${words[i]}
    if [[ $w == -* ]]; then
      [[ $w != *=* ]] && _fimctl_value "$cmd" "$w" && (( i++ ))
    else
      _fimctl_commands "$cmd"
      [[ " $REPLY " == *" $w "* ]] && cmd=${cmd:+$cmd }$w
    fi
    (( i++ ))
  done
  local cur=${words[CURRENT]} prev=${words[CURRENT-1]}
  if (( CURRENT > 2 )) && [[ $prev == -* ]] && _fimctl_value "$cmd" "$prev"; then
    _fimctl_complete "$REPLY"
  elif [[ $cur == -* ]]; then
    _fimctl_options "$cmd"
    _fimctl_complete "words:$REPLY"
  else
    _fimctl_commands "$cmd"
    if [[ -n $REPLY ]]; then
      _fimctl_complete "words:$REPLY"
    elif _fimctl_positional "$cmd"; then
      _fimctl_complete "$REPLY"
    fi
  fi
  return 0
}

# Autoloaded from fpath: this file is _fimctl's body, so complete now; sourced: register.
if [[ ${zsh_eval_context[-1]} == loadautofunc ]]; then
  _fimctl "$@"
else
  compdef _fimctl fimctl
fi
)";
}

/// `fimctl completion fish`: for fish's vendor_completions.d; one dynamic completion that
/// walks the command line as the bash and zsh scripts do.
std::string completion_fish(CLI::App& app) {
  const ShData d = walk_data(app, true);
  const auto fn = [](const char* name, const char* what, const std::string& body, const char* key) {
    return std::string("function ") + name + "  # " + what + "\n  switch " + key + "\n" + body +
           "    case '*'\n      return 1\n  end\nend\n\n";
  };
  return generated("fish") + "\n" + fn("__fimctl_commands", "a command's subcommands", d.subs, "$argv[1]") +
         fn("__fimctl_options", "its options and those of the commands above it", d.opts, "$argv[1]") +
         fn("__fimctl_value", "an option's value: file, dir, text or words:LIST; fails for a flag", d.values,
            "\"$argv[1]|$argv[2]\"") +
         fn("__fimctl_positional", "a command's arguments, or fails when it takes none", d.positionals, "$argv[1]") +
         R"(function __fimctl_kind  # $argv[1]: a kind as above, $argv[2]: the token
  switch $argv[1]
    case file
      __fish_complete_path $argv[2]
    case dir
      __fish_complete_directories $argv[2]
    case 'words:*'
      string split ' ' -- (string replace 'words:' '' -- $argv[1])
  end
end

function __fimctl_complete
  set -l cur (commandline -ct)
  set -l words (commandline -opc)
  set -e words[1]
  set -l cmd ''
  set -l skip 0
  # The command so far: words that name a subcommand of it, skipping options and values.
  for w in $words
    if test $skip = 1
      set skip 0
    else if string match -q -- '-*' $w
      if not string match -q -- '*=*' $w; and __fimctl_value "$cmd" $w >/dev/null
        set skip 1
      end
    else if contains -- $w (__fimctl_commands "$cmd" | string split ' ')
      set cmd (string trim -- "$cmd $w")
    end
  end
  set -l kind
  if test (count $words) -gt 0; and string match -q -- '-*' $words[-1]; and set kind (__fimctl_value "$cmd" $words[-1])
    __fimctl_kind $kind $cur
  else if string match -q -- '-*' $cur
    __fimctl_options "$cmd" | string split ' '
  else if set kind (__fimctl_commands "$cmd")
    string split ' ' -- $kind
  else if set kind (__fimctl_positional "$cmd")
    __fimctl_kind $kind $cur
  end
end

complete -c fimctl -f -a '(__fimctl_complete)'
)";
}

}  // namespace

std::string completion_script(CLI::App& app, const std::string& what) {
  if (what == "bash") return completion_bash(app);
  if (what == "zsh") return completion_zsh(app);
  if (what == "fish") return completion_fish(app);
  return completion_list(app);
}

}  // namespace fim::cli
