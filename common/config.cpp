#include "common/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "common/config_schema.h"
#include "common/error.h"
#include "common/text.h"

namespace ocm {
namespace config_detail {

std::string location(const std::string& source, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null())
    return source;
  return source + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

namespace {

std::string shortest(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

}  // namespace

bool Range::contains(double value) const {
  const bool low_ok = min_open ? value > min : value >= min;
  const bool high_ok = max_open ? value < max : value <= max;
  return low_ok && high_ok;
}

std::string Range::describe() const {
  const bool has_min = std::isfinite(min);
  const bool has_max = std::isfinite(max);
  if (has_min && has_max) {
    return std::string("in ") + (min_open ? "(" : "[") + shortest(min) + ", " + shortest(max) +
           (max_open ? ")" : "]");
  }
  if (has_min)
    return std::string(min_open ? "> " : ">= ") + shortest(min);
  if (has_max)
    return std::string(max_open ? "< " : "<= ") + shortest(max);
  return "";
}

Range at_least(double min) {
  return Range{min};
}
Range above_up_to(double min, double max) {
  return Range{min, max, true, false};
}
Range at_least_below(double min, double max) {
  return Range{min, max, false, true};
}

const KeySpec* Schema::find_key(const std::string& path) const {
  for (const auto& key : keys) {
    if (key.path() == path)
      return &key;
  }
  return nullptr;
}

bool Schema::is_section(const std::string& path) const {
  return std::find(sections.begin(), sections.end(), path) != sections.end();
}

bool Schema::is_section_prefix(const std::string& path) const {
  return std::any_of(sections.begin(), sections.end(), [&](const std::string& section) {
    return section.size() > path.size() && section.compare(0, path.size(), path) == 0 &&
           section[path.size()] == '.';
  });
}

std::vector<std::string> Schema::children(const std::string& prefix) const {
  std::vector<std::string> out;
  auto add = [&](const std::string& path) {
    const std::string head = prefix.empty() ? "" : prefix + ".";
    if (path.size() <= head.size() || path.compare(0, head.size(), head) != 0)
      return;
    const std::string child = path.substr(head.size(), path.find('.', head.size()) - head.size());
    if (std::find(out.begin(), out.end(), child) == out.end())
      out.push_back(child);
  };
  for (const auto& section : sections)
    add(section);
  for (const auto& key : keys)
    add(key.path());
  return out;
}

namespace {

std::string describe_node(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull())
    return "nothing";
  if (node.IsSequence())
    return "a list";
  if (node.IsMap())
    return "a mapping";
  if (node.Tag() == "!")
    return "the quoted string \"" + node.Scalar() + "\"";
  return "`" + node.Scalar() + "`";
}

// A plain (unquoted) scalar, or a UserError that says what was found instead.
std::string plain_scalar(const YAML::Node& node, const std::string& type, const std::string& key,
                         const std::string& where) {
  if (!node.IsScalar() || node.Tag() == "!") {
    throw UserError(where, "key `" + key + "` holds " + describe_node(node), type);
  }
  return node.Scalar();
}

}  // namespace

int64_t parse_integer(const YAML::Node& node, const std::string& key, const std::string& where) {
  const std::string text = plain_scalar(node, "an integer", key, where);
  const char* begin = text.data() + (text.size() > 1 && text[0] == '+' ? 1 : 0);
  const char* end = text.data() + text.size();
  int64_t value = 0;
  const auto [stop, error] = std::from_chars(begin, end, value);
  if (error == std::errc::result_out_of_range) {
    throw UserError(where, "key `" + key + "` holds `" + text + "`, which does not fit in 64 bits",
                    "an integer");
  }
  if (error != std::errc() || stop != end) {
    throw UserError(where, "key `" + key + "` holds " + describe_node(node), "an integer");
  }
  return value;
}

std::vector<int64_t> parse_integers(const YAML::Node& node, const Range& element_range,
                                    const std::string& key, const std::string& where) {
  if (!node.IsSequence()) {
    throw UserError(where, "key `" + key + "` holds " + describe_node(node),
                    "a list of integers such as [1, 2, 2]");
  }
  std::vector<int64_t> values;
  for (const auto& element : node) {
    const int64_t value = parse_integer(element, key, where);
    check_range(static_cast<double>(value), element_range, std::to_string(value), "every element",
                key, where);
    values.push_back(value);
  }
  return values;
}

double parse_number(const YAML::Node& node, const std::string& key, const std::string& where) {
  const std::string text = plain_scalar(node, "a number", key, where);
  char* stop = nullptr;
  const double value = std::strtod(text.c_str(), &stop);
  if (text.empty() || stop != text.c_str() + text.size() || !std::isfinite(value)) {
    throw UserError(where, "key `" + key + "` holds " + describe_node(node), "a finite number");
  }
  return value;
}

bool parse_boolean(const YAML::Node& node, const std::string& key, const std::string& where) {
  const std::string text = plain_scalar(node, "true or false", key, where);
  if (text == "true" || text == "True" || text == "TRUE")
    return true;
  if (text == "false" || text == "False" || text == "FALSE")
    return false;
  throw UserError(where, "key `" + key + "` holds " + describe_node(node), "true or false");
}

std::string parse_text(const YAML::Node& node, const std::string& key, const std::string& where) {
  if (!node.IsScalar()) {
    throw UserError(where, "key `" + key + "` holds " + describe_node(node), "a string");
  }
  return node.Scalar();
}

void check_range(double value, const Range& range, const std::string& shown,
                 const std::string& type, const std::string& key, const std::string& where) {
  if (!range.contains(value)) {
    throw UserError(where, "key `" + key + "` is " + shown + ", out of range",
                    type + " " + range.describe());
  }
}

void check_choice(const std::string& value, const std::vector<std::string>& options,
                  const std::string& key, const std::string& where) {
  if (std::find(options.begin(), options.end(), value) != options.end())
    return;
  const std::string guess = closest_match(value, options);
  throw UserError(where, "key `" + key + "` is `" + value + "`", join_alternatives(options),
                  guess.empty() ? "" : "Did you mean `" + guess + "`?");
}

std::string format_number(double value) {
  std::string text = shortest(value);
  // Keep numbers recognisable as such when read back by tools that type YAML scalars.
  if (text.find_first_of(".en") == std::string::npos)
    text += ".0";
  return text;
}

std::string format_integers(const std::vector<int64_t>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i)
    out += (i > 0 ? ", " : "") + std::to_string(values[i]);
  return out + "]";
}

std::string format_text(const std::string& value) {
  std::string out = "\"";
  for (const char c : value) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace config_detail

namespace {

using config_detail::KeySpec;
using config_detail::location;
using config_detail::Schema;
using config_detail::schema;

// Where a key was expected in a section, and what the nearest declared key is.
// Note [retired sections]
// Earlier versions declared an `eval` section with no keys, so every run's config.yaml and every
// checkpoint recorded `eval: {}`. The section is gone (evaluation takes its settings from the
// command line), but an empty one is still accepted, so those files keep loading.
bool is_retired_section(const std::string& path, const YAML::Node& value) {
  return path == "eval" && (value.IsNull() || (value.IsMap() && value.size() == 0));
}

[[noreturn]] void unknown_key(const Schema& s, const std::string& prefix, const std::string& name,
                              const std::string& where) {
  const std::string guess = closest_match(name, s.children(prefix));
  std::string hint = guess.empty() ? "" : "Did you mean `" + guess + "`?";
  if (guess.empty()) {
    std::vector<std::string> homes;
    for (const auto& key : s.keys) {
      if (key.name == name)
        homes.push_back("`" + key.section + "`");
    }
    if (!homes.empty())
      hint = "`" + name + "` is a key of section " + join_alternatives(homes) + ".";
  }
  std::vector<std::string> known;
  for (const auto& child : s.children(prefix))
    known.push_back("`" + child + "`");
  const std::string expected =
      known.empty() ? "no keys in this section yet" : "one of " + join_alternatives(known);
  if (prefix.empty()) {
    throw UserError(where, "unknown section `" + name + "`", expected, hint);
  }
  throw UserError(where, "unknown key `" + name + "` in section `" + prefix + "`", expected, hint);
}

void apply_mapping(Config& config, const YAML::Node& mapping, const std::string& prefix,
                   const std::string& source) {
  const Schema& s = schema();
  std::set<std::string> seen;
  for (const auto& entry : mapping) {
    const std::string where = location(source, entry.first);
    if (!entry.first.IsScalar()) {
      throw UserError(where, "a key that is not a plain name", "section and key names");
    }
    const std::string name = entry.first.Scalar();
    if (!seen.insert(name).second) {
      throw UserError(where, "`" + name + "` appears twice", "each key once");
    }
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    const YAML::Node& value = entry.second;
    if (is_retired_section(path, value))
      continue;
    if (s.is_section(path) || s.is_section_prefix(path)) {
      if (value.IsNull())
        continue;  // "section:" with nothing under it keeps its defaults
      if (!value.IsMap()) {
        throw UserError(
            location(source, value),
            "section `" + path + "` holds " + (value.IsSequence() ? "a list" : "a value"),
            "a mapping of keys");
      }
      apply_mapping(config, value, path, source);
    } else if (const KeySpec* key = s.find_key(path)) {
      key->assign(config, value, location(source, value));
    } else {
      unknown_key(s, prefix, name, where);
    }
  }
}

void apply_override(Config& config, const std::string& assignment) {
  const std::string where = "--set " + assignment;
  const size_t equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0) {
    throw UserError(where, "no `section.key=value` form",
                    "for example --set phases.score.steps=2000");
  }
  const std::string path = assignment.substr(0, equals);
  const std::string text = assignment.substr(equals + 1);
  const Schema& s = schema();
  const KeySpec* key = s.find_key(path);
  if (key == nullptr) {
    std::vector<std::string> paths;
    for (const auto& k : s.keys)
      paths.push_back(k.path());
    const std::string guess = closest_match(path, paths);
    const std::string what = s.is_section(path) || s.is_section_prefix(path)
                                 ? "`" + path + "` is a section, not a key"
                                 : "unknown key `" + path + "`";
    throw UserError(where, what, "a declared key (list them with `ocm config keys`)",
                    guess.empty() ? "" : "Did you mean `" + guess + "`?");
  }
  YAML::Node value;
  try {
    value = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw UserError(where, "the value `" + text + "` is not valid YAML (" + e.msg + ")",
                    "a YAML scalar or list");
  }
  key->assign(config, value, where);
}

}  // namespace

Config default_config() {
  Config config;
  for (const auto& key : schema().keys) {
    key.assign(config, YAML::Load(key.default_yaml), "default of " + key.path());
  }
  return config;
}

Config parse_config(const std::string& yaml_text, const std::string& source,
                    const std::vector<std::string>& overrides) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    const std::string where = e.mark.is_null() ? source
                                               : source + ":" + std::to_string(e.mark.line + 1) +
                                                     ":" + std::to_string(e.mark.column + 1);
    throw UserError(where, "YAML syntax error: " + e.msg, "a valid YAML mapping");
  }
  std::vector<std::string> sections;
  for (const auto& section : schema().children(""))
    sections.push_back("`" + section + ":`");
  if (root.IsNull()) {
    throw UserError(source, "the config is empty",
                    "a mapping of sections such as " + join_alternatives(sections));
  }
  if (!root.IsMap()) {
    throw UserError(location(source, root), "the top level is not a mapping",
                    "a mapping of sections such as " + join_alternatives(sections));
  }
  Config config = default_config();
  apply_mapping(config, root, "", source);
  for (const auto& assignment : overrides)
    apply_override(config, assignment);
  return config;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw UserError(path, "cannot open the config file", "a readable YAML file",
                    "Check the path; it is resolved from the current directory.");
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw UserError(path, "reading the config file failed", "a readable YAML file");
  return parse_config(text.str(), path, overrides);
}

std::string to_yaml(const Config& config) {
  const Schema& s = schema();
  std::ostringstream out;
  std::vector<std::string> open;  // components of the section path already printed
  for (const auto& section : s.sections) {
    std::vector<std::string> parts;
    std::stringstream split(section);
    for (std::string part; std::getline(split, part, '.');)
      parts.push_back(part);
    size_t common = 0;
    while (common < open.size() && common < parts.size() && open[common] == parts[common])
      ++common;
    for (size_t depth = common; depth < parts.size(); ++depth) {
      out << std::string(2 * depth, ' ') << parts[depth] << ":";
      const bool has_keys = std::any_of(s.keys.begin(), s.keys.end(),
                                        [&](const KeySpec& k) { return k.section == section; });
      out << (depth + 1 == parts.size() && !has_keys ? " {}\n" : "\n");
    }
    open = parts;
    const std::string indent(2 * parts.size(), ' ');
    for (const auto& key : s.keys) {
      if (key.section != section)
        continue;
      out << indent << key.name << ": " << key.format(config) << "  # " << key.doc << "\n";
    }
  }
  return out.str();
}

namespace {

bool in_sections(const KeySpec& key, const std::vector<std::string>& sections) {
  return std::any_of(sections.begin(), sections.end(), [&](const std::string& section) {
    return key.section == section || key.section.rfind(section + ".", 0) == 0;
  });
}

}  // namespace

std::vector<std::string> config_differences(const Config& before, const Config& after,
                                            const std::vector<std::string>& sections) {
  std::vector<std::string> out;
  for (const auto& key : schema().keys) {
    if (!in_sections(key, sections))
      continue;
    const std::string a = key.format(before), b = key.format(after);
    if (a != b)
      out.push_back(key.path() + ": " + a + " -> " + b);
  }
  return out;
}

std::string config_values(const Config& config, const std::vector<std::string>& sections) {
  std::string out;
  for (const auto& key : schema().keys) {
    if (in_sections(key, sections))
      out += key.path() + ": " + key.format(config) + "\n";
  }
  return out;
}

std::string describe_config_keys() {
  std::ostringstream out;
  for (const auto& key : schema().keys) {
    out << key.path() << "  (" << key.type << ", default " << key.default_yaml << ")\n    "
        << key.doc << "\n";
  }
  return out.str();
}

}  // namespace ocm
