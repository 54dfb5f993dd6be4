// Tests of the feature extractor (include/promptlearn/features/): hand-checked cases per part, properties
// (merge == union, monotone complexity, determinism), robustness on huge and random inputs, and measured
// domain accuracy / token ratios on the real corpora in ../shared/data (skipped when absent).
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "promptlearn/features/complexity.hpp"
#include "promptlearn/features/context.hpp"
#include "promptlearn/features/domain.hpp"
#include "promptlearn/features/extractor.hpp"
#include "promptlearn/features/keywords.hpp"
#include "promptlearn/features/tokenizer.hpp"

namespace pf = promptlearn::features;

namespace {

/// RFC 4180 CSV: quoted fields with "" escapes and embedded CR/LF, records ended by CRLF or LF.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  bool field_started = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field.push_back('"');
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field.push_back(c);
      }
      continue;
    }
    if (c == '"' && !field_started) {
      quoted = true;
      field_started = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
    } else if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(field));
      field.clear();
      field_started = false;
      rows.push_back(std::move(row));
      row.clear();
    } else {
      field.push_back(c);
      field_started = true;
    }
  }
  if (field_started || !row.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return true;
}

std::string data_dir() { return PROMPTLEARN_SHARED_DATA; }

pf::PromptFeatures extract(const std::string& prompt) {
  return pf::FeatureExtractor{}.extract(prompt, pf::ContextInput{}, pf::CorpusStats{});
}

std::string domain_of(const std::string& prompt) {
  return std::string(pf::domain_name(pf::classify_domain(pf::sanitize_text(prompt)).domain));
}

}  // namespace

TEST_CASE("csv parser handles quotes, escapes and embedded newlines", "[features]") {
  const auto rows = parse_csv("a,b,c\r\n\"x, y\",\"he said \"\"hi\"\"\",\"line1\nline2\"\r\n,,\r\nlast,1,2");
  REQUIRE(rows.size() == 4);
  CHECK(rows[0] == std::vector<std::string>{"a", "b", "c"});
  CHECK(rows[1] == std::vector<std::string>{"x, y", "he said \"hi\"", "line1\nline2"});
  CHECK(rows[2] == std::vector<std::string>{"", "", ""});
  CHECK(rows[3] == std::vector<std::string>{"last", "1", "2"});
}

TEST_CASE("tables are sorted for binary search", "[features]") {
  using namespace pf::detail;
  CHECK(std::is_sorted(std::begin(kStopWords), std::end(kStopWords)));
  CHECK(std::is_sorted(std::begin(kLexicon), std::end(kLexicon),
                       [](const LexiconEntry& a, const LexiconEntry& b) { return a.term < b.term; }));
  for (const auto& e : kLexicon) {
    CHECK(e.domain > 0);
    CHECK(e.domain < pf::kDomainCount);
    CHECK(e.weight > 0.0);
  }
}

TEST_CASE("normalisation trims, collapses whitespace, drops controls and repairs UTF-8", "[features]") {
  CHECK(pf::normalize_text("  a \t b\n\n c ") == "a b\nc");
  CHECK(pf::normalize_text("Keep CASE") == "Keep CASE");
  CHECK(pf::normalize_text("a\x01\x02"
                           "b\x7f"
                           "c") == "abc");
  CHECK(pf::normalize_text("x\r\ny\rz") == "x\ny\nz");
  CHECK(pf::normalize_text("caf\xC3\xA9") == "caf\xC3\xA9");  // valid UTF-8 kept
  CHECK(pf::normalize_text("a\xFF"
                           "b") ==
        "a\xEF\xBF\xBD"
        "b");                                                                     // invalid byte -> U+FFFD
  CHECK(pf::normalize_text("a\xC3") == "a\xEF\xBF\xBD");                          // truncated sequence
  CHECK(pf::normalize_text("\xE2\x80\x8Bzero\xEF\xBB\xBFwidth") == "zerowidth");  // ZWSP, BOM dropped
  CHECK(pf::normalize_text("a\xC2\xA0\xC2\xA0"
                           "b") == "a b");  // NBSP is whitespace
  CHECK(pf::normalize_text("   ").empty());
  CHECK(pf::sanitize_text("    indented\n") == "    indented\n");  // sanitize keeps layout
  CHECK(pf::count_words("  two  words\n") == 2);
  CHECK(pf::count_code_points("caf\xC3\xA9") == 4);
}

TEST_CASE("token estimate follows the cl100k pre-tokenizer on short strings", "[features]") {
  // Exact cl100k counts in comments (pieces of the pre-tokenizer in brackets).
  CHECK(pf::estimate_tokens("") == 0);
  CHECK(pf::estimate_tokens("Hello world") == 2);    // [Hello][ world]
  CHECK(pf::estimate_tokens("Hello, world!") == 4);  // [Hello][,][ world][!]
  CHECK(pf::estimate_tokens("2 + 2 = 4") == 7);      // [2][ +][ ][2][ =][ ][4]
  CHECK(pf::estimate_tokens("12345") == 2);          // [123][45]
  CHECK(pf::estimate_tokens("I'm here") == 3);       // [I]['m][ here]
  CHECK(pf::estimate_tokens("def foo(x):\n    return x + 1\n") == 11);
  CHECK(pf::estimate_tokens("\xE3\x81\x8A\xE8\xAA\x95\xE7\x94\x9F\xE6\x97\xA5") == 4);  // one per CJK/kana char
  // Approximations: cl100k gives 6 for "tiktoken is great!" and 6 for antidisestablishmentarianism.
  CHECK(pf::estimate_tokens("tiktoken is great!") == 4);
  CHECK(pf::estimate_tokens("antidisestablishmentarianism") == 5);
  CHECK(pf::estimate_tokens("HTTPServer camelCaseName") == 5);  // [HTTP][Server][ camel][Case][Name]
}

TEST_CASE("stable hash has fixed values across runs and platforms", "[features]") {
  CHECK(pf::fnv1a64("") == 0xcbf29ce484222325ULL);
  CHECK(pf::fnv1a64("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(pf::fnv1a64("foobar") == 0x85944171f73967e8ULL);
  // Expected values computed independently (Python) as fmix64(fnv1a64(s)).
  CHECK(pf::stable_hash("a") == 0x82a2a958a9bece5bULL);
  CHECK(pf::stable_hash("kw:python") == 0x33a0951fe3f60429ULL);
  const pf::FeatureExtractor fx;
  CHECK(fx.hashed_slot("kw:python") == std::make_pair(65, 1.0));
  CHECK(fx.hashed_slot("ide:vscode") == std::make_pair(79, 1.0));
  CHECK(fx.hashed_slot("lang:rust") == std::make_pair(42, 1.0));
  // signs are balanced for names sharing a prefix
  int negative = 0;
  for (int i = 0; i < 2000; ++i) negative += fx.hashed_slot("kw:term" + std::to_string(i)).second < 0 ? 1 : 0;
  CHECK(negative > 900);
  CHECK(negative < 1100);
}

TEST_CASE("terms drop stop words, keep c++ and contractions whole", "[features]") {
  const auto t = pf::extract_terms("Please write the C++ code, and don't use Python's regex; C# too. 42 x");
  CHECK(t == std::vector<std::string>{"write", "c++", "code", "python's", "regex", "c#"});
  CHECK(pf::is_stop_word("the"));
  CHECK_FALSE(pf::is_stop_word("python"));
}

TEST_CASE("keyword ranking uses TF-IDF against the corpus", "[features]") {
  const std::string prompt = "Optimize the database query. The database query is slow; profile the query planner.";
  pf::CorpusStats empty;
  auto ranked = pf::rank_keywords(prompt, empty, 3);
  REQUIRE(ranked.size() == 3);
  CHECK(ranked[0].term == "query");  // tf 3
  CHECK(ranked[0].count == 3);
  CHECK(ranked[1].term == "database");  // tf 2
  CHECK(ranked[2].term == "optimize");  // tf 1, first seen
  CHECK(ranked[0].score == Approx(1.0 + std::log(3.0)));

  // "query" appears in every corpus document: its idf falls to 1, the rare terms rise above it.
  pf::CorpusStats corpus;
  for (int i = 0; i < 50; ++i) corpus.add_document({"query", "doc" + std::to_string(i)});
  CHECK(corpus.idf("query") == Approx(1.0));
  CHECK(corpus.idf("planner") == Approx(std::log(51.0) + 1.0));
  ranked = pf::rank_keywords(prompt, corpus, 10);
  CHECK(ranked[0].term == "database");   // (1 + ln 2) * (ln 51 + 1)
  CHECK(ranked.back().term == "query");  // (1 + ln 3) * 1
}

TEST_CASE("CorpusStats: merge equals union, blob round trip, delta, garbage", "[features]") {
  const std::vector<std::vector<std::string>> docs = {
      {"alpha", "beta"}, {"beta", "gamma"}, {"alpha", "alpha", "delta"}, {}, {"epsilon"}};
  pf::CorpusStats whole(64);
  pf::CorpusStats a(64);
  pf::CorpusStats b(64);
  for (std::size_t i = 0; i < docs.size(); ++i) {
    whole.add_document(docs[i]);
    (i % 2 == 0 ? a : b).add_document(docs[i]);
  }
  CHECK(whole.documents() == 5);
  CHECK(whole.document_frequency("alpha") >= 2);  // counted once per document (collisions may add)
  pf::CorpusStats merged = a;
  merged.merge(b);
  CHECK(merged == whole);
  CHECK(merged.delta_since(a) == b);
  CHECK_THROWS_AS(a.delta_since(whole), promptlearn::ValidationError);
  pf::CorpusStats other(32);
  CHECK_THROWS_AS(merged.merge(other), promptlearn::ValidationError);
  CHECK_THROWS_AS(pf::CorpusStats(0), promptlearn::ConfigError);

  const std::string blob = whole.to_blob();
  CHECK(blob.size() == 17 + 64);  // small counts take one byte each
  CHECK(pf::CorpusStats::from_blob(blob) == whole);
  pf::CorpusStats big(8);
  for (int i = 0; i < 300; ++i) big.add_document({"x"});
  CHECK(pf::CorpusStats::from_blob(big.to_blob()) == big);

  using promptlearn::ValidationError;
  CHECK_THROWS_AS(pf::CorpusStats::from_blob(""), ValidationError);
  CHECK_THROWS_AS(pf::CorpusStats::from_blob("garbage garbage garbage"), ValidationError);
  CHECK_THROWS_AS(pf::CorpusStats::from_blob(blob.substr(0, blob.size() - 1)), ValidationError);
  CHECK_THROWS_AS(pf::CorpusStats::from_blob(blob + "x"), ValidationError);
  std::string bad_version = blob;
  bad_version[4] = 2;
  CHECK_THROWS_AS(pf::CorpusStats::from_blob(bad_version), ValidationError);
  std::string bad_count = blob;
  bad_count[17] = 100;  // bucket count above the 5 documents
  CHECK_THROWS_AS(pf::CorpusStats::from_blob(bad_count), ValidationError);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::string junk(static_cast<std::size_t>(rng() % 200), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    if (trial % 2 == 0 && junk.size() > 4) junk.replace(0, 4, "PLCS");
    try {
      (void)pf::CorpusStats::from_blob(junk);
    } catch (const ValidationError&) {
    }
  }
}

TEST_CASE("complexity score is monotone in each component and spans 1..10", "[features]") {
  pf::ComplexityComponents c;
  CHECK(pf::complexity_score(c) == Approx(1.0));
  double last = pf::complexity_score(c);
  for (int t : {1, 10, 100, 1000, 4000, 100000}) {
    c.tokens = t;
    const double s = pf::complexity_score(c);
    CHECK(s >= last);
    last = s;
  }
  for (int r : {1, 2, 5, 10, 50}) {
    c.requirements = r;
    const double s = pf::complexity_score(c);
    CHECK(s > last);
    last = s;
  }
  for (int k : {1, 2, 5}) {
    c.code_blocks = k;
    const double s = pf::complexity_score(c);
    CHECK(s > last);
    last = s;
  }
  for (double d : {0.05, 0.1, 0.25, 0.9}) {
    c.technical_density = d;
    const double s = pf::complexity_score(c);
    CHECK(s >= last);
    last = s;
  }
  c.requirements = 100000;
  c.code_blocks = 100000;
  CHECK(pf::complexity_score(c) <= 10.0);
  CHECK(pf::complexity_score(c) > 9.9);
  // hand-checked: 1 + 9 * (0.35 * ln(11)/ln(4001) + 0.30 * (1 - e^-0.5)) for 10 tokens, 3 requirements
  pf::ComplexityComponents h;
  h.tokens = 10;
  h.requirements = 3;
  CHECK(pf::complexity_score(h) ==
        Approx(1.0 + 9.0 * (0.35 * std::log(11.0) / std::log(4001.0) + 0.30 * (1.0 - std::exp(-0.5)))));
}

TEST_CASE("complexity components on hand-made prompts", "[features]") {
  const std::string text =
      "Write a parser for the config file.\n"
      "It must reject unknown keys. Use only the standard library.\n"
      "- keep it under 200 lines\n"
      "2) add unit tests\n"
      "```cpp\nint main() { return 0; }\n```\n"
      "Example:\n\n    x = parse(a)\n    y = parse(b)\n\nThanks, that is all.\n";
  const auto c = pf::analyze_complexity(text, pf::estimate_tokens(text));
  CHECK(c.code_blocks == 2);   // one fence + one indented block
  CHECK(c.requirements == 5);  // Write..., must..., Use only..., two list items
  CHECK(c.technical_density > 0.0);
  const auto simple = extract("hi there");
  const auto harder = extract(text);
  CHECK(simple.complexity_score < 2.5);
  CHECK(harder.complexity_score > simple.complexity_score + 2.0);
  CHECK(harder.code_blocks == 2);
  // an unclosed fence still counts
  CHECK(pf::analyze_complexity("```\ncode", 3).code_blocks == 1);
}

TEST_CASE("domain of clear examples", "[features]") {
  CHECK(domain_of("Write a Python function that parses a JSON file and returns a dict; fix the bug in my recursion.") ==
        "programming");
  CHECK(domain_of("def add(a, b):\n    return a + b\n") == "programming");
  CHECK(domain_of("Write a short poem about autumn leaves, with a gentle rhyme.") == "writing");
  CHECK(domain_of("Proofread my cover letter and improve the tone of the essay.") == "writing");
  CHECK(domain_of("Load the CSV dataset into pandas, compute the median and plot a histogram.") == "data_analysis");
  CHECK(domain_of("Our Kubernetes deployment fails; the Docker container cannot reach the nginx server.") == "devops");
  CHECK(domain_of("Summarize the research literature on climate policy and cite academic sources.") == "research");
  CHECK(domain_of("Solve the equation 3x + 5 = 20 and prove the theorem about prime numbers.") == "math");
  CHECK(domain_of("Pretend you are a medieval knight and stay in character during our roleplay.") == "roleplay");
  CHECK(domain_of("hello") == "general");
  CHECK(domain_of("") == "general");
  const auto r = pf::classify_domain("");
  CHECK(r.confidence == Approx(1.0));
  const auto p = pf::classify_domain("python code function compiler debug");
  CHECK(p.confidence > 0.5);
  CHECK(p.confidence < 1.0);
}

TEST_CASE("context features", "[features]") {
  CHECK(pf::languages_of({"src/main.rs", "a.py", "b.PY", "README", "C:\\x\\y.cpp", "Dockerfile", ".bashrc", "z.txt"}) ==
        std::vector<std::string>{"rust", "python", "cpp", "docker"});
  CHECK(pf::language_for_file("web/app.tsx") == "typescript");
  CHECK(pf::language_for_file("") == "");
  CHECK(pf::branch_kind("") == "none");
  CHECK(pf::branch_kind("main") == "main");
  CHECK(pf::branch_kind("origin/master") == "main");
  CHECK(pf::branch_kind("feature/login") == "feature");
  CHECK(pf::branch_kind("feat-x") == "feature");
  CHECK(pf::branch_kind("alice/fix-login") == "fix");
  CHECK(pf::branch_kind("hotfix/1.2.1") == "fix");
  CHECK(pf::branch_kind("release/2024.1") == "release");
  CHECK(pf::branch_kind("v1.4") == "release");
  CHECK(pf::branch_kind("experiment") == "other");
  CHECK(pf::normalize_ide("") == "none");
  CHECK(pf::normalize_ide("VS Code") == "vscode");
  CHECK(pf::normalize_ide("Cursor") == "vscode");
  CHECK(pf::normalize_ide("PyCharm 2024.1") == "jetbrains");
  CHECK(pf::normalize_ide("nvim") == "vim");
  CHECK(pf::normalize_ide("GNU Emacs") == "emacs");
  CHECK(pf::normalize_ide("claude-code") == "claude-code");
  CHECK(pf::normalize_ide("Claude Code") == "claude-code");
  CHECK(pf::normalize_ide("sublime") == "other");
}

TEST_CASE("extract fills every field and vectorize has the documented layout", "[features]") {
  const pf::FeatureExtractor fx;
  const pf::ContextInput ctx{"/home/x/proj", {"a.py", "b.rs", "c.py"}, "feature/parser", "VS Code"};
  const auto f =
      fx.extract("  Write a Python function that parses JSON.\n\n- must handle errors  ", ctx, pf::CorpusStats{});
  CHECK(f.processed_input == "Write a Python function that parses JSON.\n- must handle errors");
  CHECK(f.domain == "programming");
  CHECK(f.languages == std::vector<std::string>{"python", "rust"});
  CHECK(f.branch_kind == "feature");
  CHECK(f.ide == "vscode");
  CHECK(f.word_count == 11);
  CHECK(f.requirements == 2);
  CHECK(f.detected_keywords.front() == "write");
  CHECK(f.token_count > 5);

  nlohmann::json j = f;
  for (const char* key : {"processed_input", "token_count", "complexity_score", "detected_keywords", "domain",
                          "domain_confidence", "languages", "branch_kind", "ide", "code_blocks", "requirements",
                          "technical_density", "char_count", "word_count"}) {
    CHECK(j.contains(key));
  }
  CHECK(j.get<pf::PromptFeatures>().processed_input == f.processed_input);

  CHECK(fx.dimension() == 24 + 256);
  const Eigen::VectorXd v = fx.vectorize(f, 6);
  REQUIRE(v.size() == fx.dimension());
  CHECK(v[0] == 1.0);
  CHECK(v[1] == Approx(f.complexity_score / 10.0));
  CHECK(v[pf::FeatureExtractor::kDomainOffset + 1] == 1.0);  // programming
  CHECK(v.segment(pf::FeatureExtractor::kDomainOffset, pf::kDomainCount).sum() == 1.0);
  CHECK(v[pf::FeatureExtractor::kHourOffset] == Approx(1.0));  // sin(pi/2)
  CHECK(v[pf::FeatureExtractor::kHourOffset + 1] == Approx(0.0).margin(1e-12));
  CHECK(v[pf::FeatureExtractor::kBranchOffset + 1] == 1.0);  // feature
  const auto slot = fx.hashed_slot("ide:vscode");
  const Eigen::VectorXd unknown_hour = fx.vectorize(f, -1);
  CHECK(unknown_hour.segment(pf::FeatureExtractor::kHourOffset, 3).isZero());
  CHECK_THROWS_AS(fx.vectorize(f, 24), promptlearn::ValidationError);
  // determinism: a second extractor gives the identical vector
  const pf::FeatureExtractor fx2;
  CHECK(fx2.vectorize(fx2.extract("  Write a Python function that parses JSON.\n\n- must handle errors  ", ctx,
                                  pf::CorpusStats{}),
                      6) == v);
  CHECK(std::abs(v[slot.first]) > 0.0);

  pf::FeatureOptions small;
  small.hash_dim = 8;
  CHECK(pf::FeatureExtractor(small).dimension() == 32);
  pf::FeatureOptions bad;
  bad.hash_dim = 4;
  CHECK_THROWS_AS(pf::FeatureExtractor(bad), promptlearn::ConfigError);
  try {
    bad.validate();
  } catch (const promptlearn::ConfigError& e) {
    CHECK(e.key() == "features.hash_dim");
  }
  bad.hash_dim = (1 << 20) + 1;
  CHECK_THROWS_AS(bad.validate(), promptlearn::ConfigError);
  const nlohmann::json oj = nlohmann::json::parse(R"({"hash_dim": 64})");
  CHECK(oj.get<pf::FeatureOptions>().hash_dim == 64);
  CHECK(oj.get<pf::FeatureOptions>().max_keywords == 10);
}

TEST_CASE("huge and random-byte prompts do not crash and stay linear", "[features]") {
  const pf::FeatureExtractor fx;
  std::string huge;
  while (huge.size() < 150000) huge += "Write the function foo_bar(x) -> int; it must return 42. ```\n    code\n";
  auto start = std::chrono::steady_clock::now();
  const auto f = fx.extract(huge, {}, pf::CorpusStats{});
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  CHECK(f.char_count >= 150000);
  CHECK(f.complexity_score <= 10.0);
  std::cout << "features: extract of a " << huge.size() << "-byte prompt took " << ms << " ms\n";
  CHECK(ms < 5000.0);

  const std::string one_word(150000, 'a');
  CHECK(fx.extract(one_word, {}, pf::CorpusStats{}).word_count == 1);
  const std::string spaces(150000, ' ');
  CHECK(fx.extract(spaces, {}, pf::CorpusStats{}).processed_input.empty());
  const std::string newlines(150000, '\n');
  CHECK(fx.extract(newlines, {}, pf::CorpusStats{}).word_count == 0);
  const std::string punct(150000, '(');
  CHECK(fx.extract(punct, {}, pf::CorpusStats{}).token_count > 0);

  std::mt19937 rng(12345);
  for (int trial = 0; trial < 300; ++trial) {
    std::string junk(static_cast<std::size_t>(rng() % (trial < 295 ? 400 : 150000)), '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    pf::ContextInput ctx;
    ctx.recent_files = {junk.substr(0, 20)};
    ctx.git_branch = junk.substr(0, 10);
    ctx.ide_detected = junk.substr(0, 8);
    pf::PromptFeatures r;
    REQUIRE_NOTHROW(r = fx.extract(junk, ctx, pf::CorpusStats{}));
    REQUIRE_NOTHROW(nlohmann::json(r).dump());  // processed_input and keywords are valid UTF-8
    REQUIRE_NOTHROW(fx.vectorize(r, trial % 24));
    REQUIRE_NOTHROW(fx.terms(junk));
  }
  // random strings over an alphabet of tricky pieces (multi-byte spaces, quotes, fences, invalid bytes)
  const std::vector<std::string> pieces = {" ",
                                           "\xC2\xA0",
                                           "\n",
                                           "\r\n",
                                           "\t",
                                           "'",
                                           "'s",
                                           "```",
                                           "    ",
                                           "a",
                                           "Ab",
                                           "1234",
                                           "\xE3\x81\x8A",
                                           "\xF0\x9F\x98\x80",
                                           "\xFF",
                                           "\xC3",
                                           "-",
                                           "- ",
                                           "1. ",
                                           "()",
                                           "x^2",
                                           "c++",
                                           "_",
                                           ".py",
                                           "\xE2\x80\x99",
                                           "\x00"};
  for (int trial = 0; trial < 500; ++trial) {
    std::string text;
    const std::size_t len = rng() % 300;
    for (std::size_t k = 0; k < len; ++k) text += pieces[rng() % pieces.size()];
    pf::PromptFeatures r;
    REQUIRE_NOTHROW(r = fx.extract(text, {}, pf::CorpusStats{}));
    REQUIRE_NOTHROW(nlohmann::json(r).dump());
    CHECK(r.token_count <= static_cast<std::int64_t>(text.size()));
  }
}

// ---------------------------------------------------------------- real corpora

namespace {

/// Maps a vicuna-bench category to the expected domain (documented in docs/features.md).
std::string vicuna_expected(const std::string& category) {
  static const std::map<std::string, std::string> kMap = {
      {"coding", "programming"}, {"writing", "writing"},      {"math", "math"},
      {"roleplay", "roleplay"},  {"knowledge", "research"},   {"fermi", "math"},
      {"generic", "general"},    {"common-sense", "general"}, {"counterfactual", "general"}};
  const auto it = kMap.find(category);
  return it == kMap.end() ? "general" : it->second;
}

bool technical_name(const std::string& d) { return d == "programming" || d == "devops" || d == "data_analysis"; }

}  // namespace

TEST_CASE("domain accuracy and token ratios on the real corpora", "[features][corpus]") {
  const std::string dir = data_dir();
  std::string probe;
  if (!read_file(dir + "/README.md", probe)) {
    WARN("features corpus test skipped: " << dir << " not found");
    return;
  }
  const pf::FeatureExtractor fx;
  const pf::CorpusStats no_corpus;

  // humaneval: every prompt is programming
  {
    std::string text;
    REQUIRE(read_file(dir + "/humaneval/HumanEval.jsonl", text));
    std::istringstream lines(text);
    std::string line;
    int total = 0;
    int correct = 0;
    double chars = 0;
    double tokens = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const std::string prompt = nlohmann::json::parse(line).at("prompt").get<std::string>();
      const auto f = fx.extract(prompt, {}, no_corpus);
      ++total;
      correct += f.domain == "programming" ? 1 : 0;
      chars += static_cast<double>(f.char_count);
      tokens += static_cast<double>(f.token_count);
    }
    const double acc = static_cast<double>(correct) / total;
    std::cout << "features: humaneval domain accuracy (programming) " << correct << "/" << total << " = " << acc
              << "; chars/token " << chars / tokens << "\n";
    CHECK(total == 164);
    CHECK(acc >= 0.95);
  }

  // vicuna-bench: category -> domain mapping
  {
    std::string text;
    REQUIRE(read_file(dir + "/vicuna-bench/question.jsonl", text));
    std::istringstream lines(text);
    std::string line;
    std::map<std::string, std::pair<int, int>> per_category;  // correct, total
    int total = 0;
    int correct = 0;
    int mapped_total = 0;  // categories with a specific (non-general) domain
    int mapped_correct = 0;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      const auto j = nlohmann::json::parse(line);
      const std::string category = j.at("category").get<std::string>();
      const std::string prompt = j.at("turns").at(0).get<std::string>();
      const std::string expected = vicuna_expected(category);
      const std::string got = fx.extract(prompt, {}, no_corpus).domain;
      const bool ok = got == expected;
      auto& pc = per_category[category];
      pc.first += ok ? 1 : 0;
      pc.second += 1;
      ++total;
      correct += ok ? 1 : 0;
      if (expected != "general") {
        ++mapped_total;
        mapped_correct += ok ? 1 : 0;
      }
    }
    std::cout << "features: vicuna-bench domain accuracy " << correct << "/" << total << " = "
              << static_cast<double>(correct) / total << "; non-general categories " << mapped_correct << "/"
              << mapped_total << "\n";
    for (const auto& [cat, pc] : per_category) {
      std::cout << "features:   vicuna " << cat << " -> " << vicuna_expected(cat) << ": " << pc.first << "/"
                << pc.second << "\n";
    }
    CHECK(total == 80);
    CHECK(static_cast<double>(correct) / total >= 0.55);
  }

  // awesome-chatgpt-prompts: for_devs TRUE -> technical group, FALSE -> anything else
  for (const char* corpus : {"acp-classic", "acp-latest"}) {
    std::string text;
    REQUIRE(read_file(dir + "/" + corpus + "/prompts.csv", text));
    const auto rows = parse_csv(text);
    REQUIRE(rows.size() > 1);
    const auto& header = rows[0];
    const auto col = [&](const std::string& name) {
      return static_cast<std::size_t>(std::find(header.begin(), header.end(), name) - header.begin());
    };
    const std::size_t prompt_col = col("prompt");
    const std::size_t devs_col = col("for_devs");
    REQUIRE(prompt_col < header.size());
    REQUIRE(devs_col < header.size());
    int tp = 0, fn = 0, tn = 0, fp = 0;
    double chars = 0;
    double tokens = 0;
    double max_ms = 0;
    std::map<std::string, int> domains;
    pf::CorpusStats stats;
    for (std::size_t r = 1; r < rows.size(); ++r) {
      if (rows[r].size() <= std::max(prompt_col, devs_col)) continue;
      const std::string& prompt = rows[r][prompt_col];
      const bool devs = rows[r][devs_col] == "TRUE";
      const auto start = std::chrono::steady_clock::now();
      const auto f = fx.extract(prompt, {}, stats);
      max_ms =
          std::max(max_ms, std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
      stats.add_document(fx.terms(prompt));
      ++domains[f.domain];
      const bool tech = technical_name(f.domain);
      if (devs) {
        (tech ? tp : fn) += 1;
      } else {
        (tech ? fp : tn) += 1;
      }
      chars += static_cast<double>(f.char_count);
      tokens += static_cast<double>(f.token_count);
    }
    const int total = tp + fn + tn + fp;
    const double acc = static_cast<double>(tp + tn) / total;
    const double tpr = tp + fn > 0 ? static_cast<double>(tp) / (tp + fn) : 0.0;
    const double tnr = tn + fp > 0 ? static_cast<double>(tn) / (tn + fp) : 0.0;
    std::cout << "features: " << corpus << " technical-vs-not accuracy " << tp + tn << "/" << total << " = " << acc
              << " (for_devs TRUE recall " << tpr << ", FALSE recall " << tnr << ", balanced " << (tpr + tnr) / 2
              << "); chars/token " << chars / tokens << "; slowest extract " << max_ms << " ms; domains:";
    for (const auto& [d, n] : domains) std::cout << " " << d << "=" << n;
    std::cout << "\n";
    // Floors a little below the measured values (docs/features.md); acp-latest's for_devs label leaves many
    // technical prompts FALSE, so its accuracy is lower.
    const bool classic = std::string(corpus) == "acp-classic";
    CHECK((tpr + tnr) / 2 >= (classic ? 0.85 : 0.75));
    CHECK(acc >= (classic ? 0.85 : 0.65));
  }
}
