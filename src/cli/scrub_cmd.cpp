// promptlearn scrub: replaces PII and secrets in stdin's lines by typed placeholders (issue 7).
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli.hpp"
#include "promptlearn/core/error.hpp"
#include "promptlearn/privacy/scrub.hpp"

namespace promptlearn::cli {

int run_scrub(const Args& args) {
  if (args.has("help")) {
    std::cout << "usage: promptlearn scrub [--kinds email,phone,card,ip,secret,home_user|all] [--stats [--human]]\n"
                 "                        < IN > OUT\n"
                 "Copies stdin to stdout line by line with e-mail addresses, phone numbers, payment cards (Luhn),\n"
                 "IP addresses, API keys / tokens / private keys / high-entropy secrets and home-directory user\n"
                 "names replaced by [EMAIL], [PHONE], [CARD], [IP], [SECRET] and [USER]. As many lines come out as\n"
                 "go in (a last line without a newline stays without one; a PEM key block becomes one [SECRET] per\n"
                 "line). --kinds limits the detectors (default: all); --stats prints the number of lines and of\n"
                 "findings per kind as one JSON line to stderr at the end (--human: as one readable line,\n"
                 "\"lines N, email N, ..., total N\"). Exit status 2 on an unknown kind.\n";
    return 0;
  }
  privacy::ScrubOptions options;
  if (auto kinds = args.get("kinds")) {
    try {
      options = privacy::parse_kinds(*kinds);
    } catch (const ConfigError& e) {
      std::cerr << "promptlearn scrub: " << e.what() << "\n";
      return 2;
    }
  }
  privacy::LineScrubber scrubber(options);
  std::ios::sync_with_stdio(false);
  std::cin.tie(nullptr);
  std::string line, out;
  std::size_t lines = 0;
  while (std::getline(std::cin, line)) {
    ++lines;
    const bool newline = !std::cin.eof();  // getline stopped at a '\n' rather than at the end of input
    out = scrubber.scrub_line(line);
    if (newline) out.push_back('\n');
    std::cout.write(out.data(), static_cast<std::streamsize>(out.size()));
  }
  std::cout.flush();
  if (!std::cout) {
    std::cerr << "promptlearn scrub: cannot write to stdout\n";
    return 1;
  }
  if (args.has("stats")) {
    nlohmann::json j;
    j["lines"] = lines;
    std::size_t total = 0;
    for (privacy::PiiKind k : privacy::kAllPiiKinds) {
      const std::size_t n = scrubber.counts()[static_cast<std::size_t>(k)];
      j[std::string(privacy::to_string(k))] = n;
      total += n;
    }
    j["total"] = total;
    if (args.has("human")) {
      std::string line = fmt::format("lines {}", lines);
      for (privacy::PiiKind k : privacy::kAllPiiKinds)
        line += fmt::format(", {} {}", privacy::to_string(k), scrubber.counts()[static_cast<std::size_t>(k)]);
      std::cerr << line << fmt::format(", total {}", total) << std::endl;
    } else {
      std::cerr << j.dump() << std::endl;
    }
  }
  return 0;
}

}  // namespace promptlearn::cli
