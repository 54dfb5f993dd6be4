#pragma once
/// @file Context features from an interaction's context_data: languages of recent files, the kind of
/// git branch and the normalised IDE name.
#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "promptlearn/features/detail/text.hpp"

namespace promptlearn::features {

/// The record's context_data, as the feature extractor reads it.
struct ContextInput {
  std::string working_directory;          ///< absolute path of the host's working directory
  std::vector<std::string> recent_files;  ///< recently touched files (paths or names)
  std::string git_branch;                 ///< current branch name, "" if none
  std::string ide_detected;               ///< host-reported IDE name, "" if none
};

namespace detail {

inline std::string to_lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

inline bool contains(std::string_view hay, std::string_view needle) noexcept {
  return hay.find(needle) != std::string_view::npos;
}

}  // namespace detail

/// Language of a file from its name or extension (lower-case result, "" if unknown).
/// Example: `language_for_file("src/main.rs") == "rust"`, `language_for_file("Dockerfile") == "docker"`.
inline std::string language_for_file(std::string_view path) {
  const std::size_t slash = path.find_last_of("/\\");
  const std::string name = detail::to_lower_ascii(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (name == "dockerfile" || name.rfind("dockerfile.", 0) == 0) return "docker";
  if (name == "makefile" || name == "gnumakefile") return "make";
  if (name == "cmakelists.txt") return "cmake";
  const std::size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == name.size()) return "";
  const std::string_view ext = std::string_view(name).substr(dot + 1);
  struct Entry {
    std::string_view ext;
    std::string_view language;
  };
  constexpr Entry kTable[] = {{"py", "python"},
                              {"pyi", "python"},
                              {"ipynb", "python"},
                              {"rs", "rust"},
                              {"js", "javascript"},
                              {"mjs", "javascript"},
                              {"cjs", "javascript"},
                              {"jsx", "javascript"},
                              {"ts", "typescript"},
                              {"tsx", "typescript"},
                              {"mts", "typescript"},
                              {"c", "c"},
                              {"h", "c"},
                              {"cc", "cpp"},
                              {"cpp", "cpp"},
                              {"cxx", "cpp"},
                              {"hpp", "cpp"},
                              {"hh", "cpp"},
                              {"hxx", "cpp"},
                              {"ipp", "cpp"},
                              {"java", "java"},
                              {"kt", "kotlin"},
                              {"kts", "kotlin"},
                              {"go", "go"},
                              {"rb", "ruby"},
                              {"php", "php"},
                              {"cs", "csharp"},
                              {"fs", "fsharp"},
                              {"swift", "swift"},
                              {"m", "objective-c"},
                              {"mm", "objective-c"},
                              {"scala", "scala"},
                              {"sh", "shell"},
                              {"bash", "shell"},
                              {"zsh", "shell"},
                              {"fish", "shell"},
                              {"ps1", "powershell"},
                              {"sql", "sql"},
                              {"html", "html"},
                              {"htm", "html"},
                              {"css", "css"},
                              {"scss", "css"},
                              {"sass", "css"},
                              {"less", "css"},
                              {"md", "markdown"},
                              {"markdown", "markdown"},
                              {"rst", "restructuredtext"},
                              {"json", "json"},
                              {"yaml", "yaml"},
                              {"yml", "yaml"},
                              {"toml", "toml"},
                              {"xml", "xml"},
                              {"r", "r"},
                              {"jl", "julia"},
                              {"lua", "lua"},
                              {"dart", "dart"},
                              {"ex", "elixir"},
                              {"exs", "elixir"},
                              {"erl", "erlang"},
                              {"hs", "haskell"},
                              {"clj", "clojure"},
                              {"ml", "ocaml"},
                              {"pl", "perl"},
                              {"tf", "terraform"},
                              {"vue", "vue"},
                              {"svelte", "svelte"},
                              {"zig", "zig"},
                              {"nim", "nim"},
                              {"sol", "solidity"},
                              {"tex", "latex"},
                              {"proto", "protobuf"},
                              {"cmake", "cmake"},
                              {"gradle", "gradle"},
                              {"csv", "csv"},
                              {"tsv", "csv"}};
  for (const auto& e : kTable) {
    if (e.ext == ext) return std::string(e.language);
  }
  return "";
}

/// Distinct languages of `files`, in order of first appearance.
inline std::vector<std::string> languages_of(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::string lang = language_for_file(f);
    if (!lang.empty() && std::find(out.begin(), out.end(), lang) == out.end()) out.push_back(std::move(lang));
  }
  return out;
}

/// Kind of a git branch: "none" (empty), "main" (main, master, trunk, develop, dev), "feature"
/// (feature/, feat/...), "fix" (fix/, bugfix/, hotfix/, bug/), "release" (release/, rel/, v1.2) or
/// "other". The name is split on '/', '-', '_' and '.'; the first word with a kind decides, so
/// "alice/fix-login" is "fix". "refs/heads/" and "origin/" prefixes are ignored.
inline std::string branch_kind(std::string_view branch) {
  std::string b = detail::to_lower_ascii(branch);
  while (!b.empty() && detail::is_ascii_space(b.back())) b.pop_back();
  std::size_t lead = 0;
  while (lead < b.size() && detail::is_ascii_space(b[lead])) ++lead;
  b.erase(0, lead);
  if (b.empty()) return "none";
  for (std::string_view prefix : {std::string_view("refs/heads/"), std::string_view("origin/")}) {
    if (b.rfind(prefix, 0) == 0) b.erase(0, prefix.size());
  }
  if (b == "main" || b == "master" || b == "trunk" || b == "develop" || b == "development" || b == "dev") {
    return "main";
  }
  std::size_t i = 0;
  while (i < b.size()) {
    std::size_t j = i;
    while (j < b.size() && b[j] != '/' && b[j] != '-' && b[j] != '_' && b[j] != '.') ++j;
    const std::string_view w = std::string_view(b).substr(i, j - i);
    if (w == "feature" || w == "feat" || w == "features" || w == "story") return "feature";
    if (w == "fix" || w == "bugfix" || w == "hotfix" || w == "bug" || w == "fixes") return "fix";
    if (w == "release" || w == "releases" || w == "rel") return "release";
    if (i == 0 && w.size() >= 2 && w[0] == 'v' && detail::is_digit(w[1])) return "release";
    i = j + 1;
  }
  return "other";
}

/// Normalised IDE: "vscode" (also Cursor, Windsurf, VSCodium), "jetbrains" (IntelliJ, PyCharm, CLion,
/// ...), "vim" (vi, vim, nvim, neovim), "emacs", "claude-code", "other", or "none" (empty/unknown).
inline std::string normalize_ide(std::string_view ide) {
  const std::string s = detail::to_lower_ascii(ide);
  std::string t;  // letters only, for "vs code" / "visual-studio-code"
  for (char c : s) {
    if (detail::is_lower(c)) t.push_back(c);
  }
  using detail::contains;
  if (t.empty() || t == "none" || t == "unknown" || t == "null") return "none";
  if (contains(t, "claude")) return "claude-code";
  if (contains(t, "vscode") || contains(t, "visualstudiocode") || contains(t, "cursor") || contains(t, "windsurf") ||
      contains(t, "codium")) {
    return "vscode";
  }
  constexpr std::string_view kJetBrains[] = {"jetbrains", "intellij",      "idea",  "pycharm",  "webstorm",
                                             "clion",     "goland",        "rider", "phpstorm", "rubymine",
                                             "datagrip",  "androidstudio", "fleet", "rustrover"};
  for (auto j : kJetBrains) {
    if (contains(t, j)) return "jetbrains";
  }
  if (t == "vi" || t == "vim" || t == "nvim" || t == "neovim" || t == "gvim" || t == "macvim") return "vim";
  if (contains(t, "emacs")) return "emacs";
  return "other";
}

}  // namespace promptlearn::features
