#include "data/manifest.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/files.h"

namespace ocm::data {
namespace {

using nlohmann::json;

constexpr int64_t kMaxManifestBytes = 64 << 20;
constexpr int64_t kMaxDimension = 1 << 16;
constexpr int64_t kMaxElementBytes = int64_t{1} << 28;
constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr size_t kMaxShards = 1 << 20;

// Reads typed fields of one JSON object, naming "<file>: <path>" in every error.
class Fields {
 public:
  Fields(const json& object, std::string file, std::string path,
         std::string hint =
             "The dataset directory is damaged or was not written by `ocm data "
             "prepare`.")
      : object_(object), file_(std::move(file)), path_(std::move(path)), hint_(std::move(hint)) {
    if (!object_.is_object())
      fail(path_, "is not an object", "a JSON object");
  }

  const json& get(const std::string& key) const {
    const auto found = object_.find(key);
    if (found == object_.end())
      fail(at(key), "is missing", "the field to be present");
    return *found;
  }

  int64_t integer(const std::string& key, int64_t min, int64_t max) const {
    const json& value = get(key);
    if (!value.is_number_integer())
      fail(at(key), "is " + value.dump(), "an integer");
    const auto number = value.get<int64_t>();
    if (number < min || number > max) {
      fail(at(key), "is " + std::to_string(number),
           "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return number;
  }

  std::string text(const std::string& key, const std::regex& pattern,
                   const std::string& expected) const {
    const json& value = get(key);
    if (!value.is_string() || !std::regex_match(value.get<std::string>(), pattern)) {
      fail(at(key), "is " + value.dump().substr(0, 80), expected);
    }
    return value.get<std::string>();
  }

  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  [[noreturn]] void fail(const std::string& field, const std::string& what,
                         const std::string& expected) const {
    throw UserError(file_ + ": " + field, what, expected, hint_);
  }

 private:
  const json& object_;
  std::string file_;
  std::string path_;
  std::string hint_;
};

// A list of `count` finite numbers (any count when count < 0) at `field`.
std::vector<double> numbers(const Fields& fields, const json& value, const std::string& field,
                            int64_t count) {
  if (!value.is_array() || (count >= 0 && static_cast<int64_t>(value.size()) != count))
    fields.fail(field, "is " + value.dump().substr(0, 80),
                count >= 0 ? "a list of " + std::to_string(count) + " numbers" : "a list");
  std::vector<double> out;
  for (const json& v : value) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      fields.fail(field, "holds " + v.dump().substr(0, 40), "finite numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

MixtureSpec parse_mixture(const Fields& fields) {
  MixtureSpec m;
  m.weights = numbers(fields, fields.get("weights"), fields.at("weights"), -1);
  const auto k = static_cast<int64_t>(m.weights.size());
  if (k < 1 || k > 1024)
    fields.fail(fields.at("weights"), "has " + std::to_string(k) + " entries", "1 to 1024");
  double total = 0;
  for (const double w : m.weights) {
    if (w <= 0)
      fields.fail(fields.at("weights"), "holds " + std::to_string(w), "positive weights");
    total += w;
  }
  if (std::abs(total - 1) > 1e-6)
    fields.fail(fields.at("weights"), "sums to " + std::to_string(total), "weights summing to 1");
  for (const char* key : {"means", "stds"}) {
    const json& rows = fields.get(key);
    if (!rows.is_array() || static_cast<int64_t>(rows.size()) != k)
      fields.fail(fields.at(key), "is not a list of " + std::to_string(k) + " rows",
                  "one row per weight");
    auto& out = std::string(key) == "means" ? m.means : m.stds;
    const int64_t d = rows[0].is_array() ? static_cast<int64_t>(rows[0].size()) : -1;
    if (d < 1 || d > kMaxDimension)
      fields.fail(fields.at(key) + "[0]", "is not a list of 1 to 65536 numbers",
                  "a row per weight");
    for (size_t i = 0; i < rows.size(); ++i)
      out.push_back(numbers(fields, rows[i], fields.at(key) + "[" + std::to_string(i) + "]", d));
  }
  if (m.means[0].size() != m.stds[0].size())
    fields.fail(fields.at("stds"), "has rows of another length than means", "rows of one length");
  for (const auto& row : m.stds) {
    for (const double s : row) {
      if (s <= 0)
        fields.fail(fields.at("stds"), "holds " + std::to_string(s), "positive stds");
    }
  }
  return m;
}

json parse_json(const std::string& text, const std::string& where, const std::string& expected) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw UserError(where, "is not valid JSON (at byte " + std::to_string(e.byte) + ")", expected);
  } catch (const json::exception& e) {  // e.g. a number beyond double's range
    throw UserError(where, std::string("is not JSON this reader can hold: ") + e.what(), expected);
  }
}

json mixture_to_json(const MixtureSpec& m) {
  return {{"weights", m.weights}, {"means", m.means}, {"stds", m.stds}};
}

}  // namespace

MixtureSpec mixture_from_json(const std::string& text, const std::string& where) {
  const json root =
      parse_json(text, where, "{\"weights\": [...], \"means\": [[...]], \"stds\": [[...]]}");
  return parse_mixture(
      Fields(root, where, "", "A mixture spec is a JSON object like configs/gmm2d_mixture.json."));
}

int64_t Manifest::element_bytes() const {
  int64_t bytes = dtype == "uint8" ? 1 : 4;
  for (const int64_t d : element_shape)
    bytes *= d;
  return bytes;
}

const SplitEntry& Manifest::split(const std::string& name, const std::string& dataset_dir) const {
  const auto found = splits.find(name);
  if (found == splits.end()) {
    std::string known;
    for (const auto& [split_name, entry] : splits)
      known += (known.empty() ? "" : ", ") + split_name;
    throw UserError(dataset_dir, "has no split `" + name + "`", "one of: " + known);
  }
  return found->second;
}

Manifest read_manifest(const std::string& dataset_dir) {
  const std::string file = files::join(dataset_dir, "manifest.json");
  const int64_t size = files::file_size(file);
  if (size < 0) {
    throw UserError(file, "cannot be read (" + std::string(std::strerror(errno)) + ")",
                    "a dataset directory made by `ocm data prepare`");
  }
  if (size > kMaxManifestBytes) {
    throw UserError(file, "is " + std::to_string(size) + " bytes", "at most 64 MiB");
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  Manifest manifest = manifest_from_json(text.str(), file);
  if (manifest.splits.empty())
    throw UserError(file + ": splits", "is empty", "at least one split");
  return manifest;
}

Manifest manifest_from_json(const std::string& text, const std::string& file) {
  const json root = parse_json(text, file, "the manifest written by `ocm data prepare`");
  const Fields top(root, file, "");
  Manifest m;
  m.format_version = static_cast<int>(top.integer("format_version", 1, 1 << 20));
  if (m.format_version != kFormatVersion) {
    top.fail("format_version", "is " + std::to_string(m.format_version),
             "version " + std::to_string(kFormatVersion) + " (a newer ocm wrote this dataset?)");
  }
  m.kind = top.text("kind", std::regex("images|arrays"), "\"images\" or \"arrays\"");
  m.dtype = top.text("dtype", std::regex(m.kind == "images" ? "uint8" : "float32"),
                     m.kind == "images" ? "\"uint8\" for images" : "\"float32\" for arrays");
  const json& shape = top.get("element_shape");
  if (!shape.is_array() || shape.empty() || shape.size() > 4 ||
      (m.kind == "images" && shape.size() != 3)) {
    top.fail("element_shape", "is " + shape.dump().substr(0, 80),
             m.kind == "images" ? "[H, W, C]" : "a list of 1 to 4 sizes");
  }
  int64_t bytes = m.kind == "images" ? 1 : 4;
  for (const json& d : shape) {
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxDimension) {
      top.fail("element_shape", "has the size " + d.dump(), "sizes in [1, 65536]");
    }
    m.element_shape.push_back(d.get<int64_t>());
    bytes *= d.get<int64_t>();
    if (bytes > kMaxElementBytes)
      top.fail("element_shape", "describes elements over 256 MiB", "smaller elements");
  }
  if (!top.get("has_labels").is_boolean())
    top.fail("has_labels", "is not true or false", "a boolean");
  m.has_labels = top.get("has_labels").get<bool>();
  m.num_classes = top.integer("num_classes", 0, 1 << 24);
  if (root.contains("source") && root["source"].is_string())
    m.source = root["source"].get<std::string>();

  const Fields splits(top.get("splits"), file, "splits");
  const std::regex split_name("[a-z0-9_]{1,32}");
  const std::regex shard_name("shard-[0-9]{5,9}\\.h5");
  const std::regex hex("[0-9a-f]{64}");
  for (const auto& [name, value] : top.get("splits").items()) {
    if (!std::regex_match(name, split_name))
      top.fail("splits." + name, "is not a split name", "[a-z0-9_]+");
    const Fields split(value, file, "splits." + name);
    SplitEntry entry;
    entry.count = split.integer("count", 0, kMaxElements);
    const json& shards = split.get("shards");
    if (!shards.is_array() || shards.size() > kMaxShards) {
      split.fail(split.at("shards"), "is not a list of at most 2^20 shards", "a list of shards");
    }
    int64_t next = 0;
    for (size_t i = 0; i < shards.size(); ++i) {
      const Fields shard(shards[i], file, split.at("shards") + "[" + std::to_string(i) + "]");
      ShardEntry s;
      s.file = shard.text("file", shard_name, "a name like shard-00000.h5");
      s.begin = shard.integer("begin", next, next);
      s.end = shard.integer("end", next + 1, entry.count);
      s.sha256 = shard.text("sha256", hex, "64 lowercase hex digits");
      next = s.end;
      entry.shards.push_back(std::move(s));
    }
    if (next != entry.count) {
      split.fail(
          split.at("count"),
          "is " + std::to_string(entry.count) + " but the shards hold " + std::to_string(next),
          "the shards to cover the split");
    }
    m.splits[name] = std::move(entry);
  }
  if (root.contains("mixture")) {
    m.mixture = parse_mixture(Fields(root["mixture"], file, "mixture"));
    const std::vector<int64_t> shape{static_cast<int64_t>(m.mixture->means[0].size())};
    if (m.kind != "arrays" || m.element_shape != shape)
      top.fail("mixture", "describes " + std::to_string(shape[0]) + "-d vectors",
               "arrays of that shape");
  }
  return m;
}

std::string manifest_to_json(const Manifest& m) {
  json root;
  root["format_version"] = m.format_version;
  root["kind"] = m.kind;
  root["dtype"] = m.dtype;
  root["element_shape"] = m.element_shape;
  root["has_labels"] = m.has_labels;
  root["num_classes"] = m.num_classes;
  root["source"] = m.source;
  json splits = json::object();
  for (const auto& [name, split] : m.splits) {
    json shards = json::array();
    for (const auto& s : split.shards) {
      shards.push_back(
          {{"file", s.file}, {"begin", s.begin}, {"end", s.end}, {"sha256", s.sha256}});
    }
    splits[name] = {{"count", split.count}, {"shards", shards}};
  }
  root["splits"] = splits;
  if (m.mixture)
    root["mixture"] = mixture_to_json(*m.mixture);
  return root.dump(2) + "\n";
}

void write_manifest(const Manifest& m, const std::string& dir) {
  files::write_text_atomically(files::join(dir, "manifest.json"), manifest_to_json(m));
}

}  // namespace ocm::data
