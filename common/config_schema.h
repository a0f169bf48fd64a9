#pragma once
// Internal to common/: the machinery behind Note [strict config]. Other folders use config.h.

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config.h"

namespace ocm::config_detail {

// Where a value came from, for error messages: "path/run.yaml:12:5" or "--set a.b=c".
std::string location(const std::string& source, const YAML::Node& node);

struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false;
  bool max_open = false;

  bool contains(double value) const;
  std::string describe() const;  // "≥ 1", "in (0, 1]", "" when unbounded
};

Range at_least(double min);
Range above_up_to(double min, double max);     // (min, max]
Range at_least_below(double min, double max);  // [min, max)

struct KeySpec {
  std::string section;  // dotted section path, e.g. "phases.score"
  std::string name;     // key within the section, e.g. "steps"
  std::string type;     // human-readable type with its allowed values
  std::string doc;
  std::string default_yaml;
  // Parses, checks and stores the value of `node` into `config`; throws UserError naming `where`.
  std::function<void(Config& config, const YAML::Node& node, const std::string& where)> assign;
  // The value held in `config`, as YAML text.
  std::function<std::string(const Config& config)> format;

  std::string path() const { return section + "." + name; }
};

struct Schema {
  std::vector<std::string> sections;  // declaration order; nested ones use dots
  std::vector<KeySpec> keys;          // declaration order

  const KeySpec* find_key(const std::string& path) const;
  bool is_section(const std::string& path) const;
  bool is_section_prefix(const std::string& path) const;  // "phases" for "phases.score"
  std::vector<std::string> children(const std::string& prefix) const;
};

// The one schema, declared in config_schema.cpp.
const Schema& schema();

// Value parsers shared by every key type; `key` is the dotted key path, `where` its location.
int64_t parse_integer(const YAML::Node& node, const std::string& key, const std::string& where);
double parse_number(const YAML::Node& node, const std::string& key, const std::string& where);
bool parse_boolean(const YAML::Node& node, const std::string& key, const std::string& where);
std::string parse_text(const YAML::Node& node, const std::string& key, const std::string& where);
void check_range(double value, const Range& range, const std::string& shown,
                 const std::string& type, const std::string& key, const std::string& where);

std::vector<int64_t> parse_integers(const YAML::Node& node, const Range& element_range,
                                    const std::string& key, const std::string& where);

std::string format_number(double value);
std::string format_integers(const std::vector<int64_t>& values);
std::string format_text(const std::string& value);

// Declares the keys of one section, each bound to a field of the section's struct.
template <class Section>
class SectionDecl {
 public:
  using Access = Section& (*)(Config&);

  SectionDecl(Schema& schema, std::string section, Access access)
      : schema_(schema), section_(std::move(section)), access_(access) {
    schema_.sections.push_back(section_);
  }

  SectionDecl& integer(const std::string& name, int64_t Section::*field, int64_t fallback,
                       const Range& range, const std::string& doc) {
    auto access = access_;
    const std::string allowed = range.describe();
    return add(
        name, "integer" + suffix(allowed), doc, std::to_string(fallback),
        [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
          const int64_t value = parse_integer(node, key, where);
          check_range(static_cast<double>(value), range, std::to_string(value), "an integer", key,
                      where);
          access(c).*field = value;
        },
        [=](const Config& c) { return std::to_string(access(const_cast<Config&>(c)).*field); });
  }

  SectionDecl& number(const std::string& name, double Section::*field, double fallback,
                      const Range& range, const std::string& doc) {
    auto access = access_;
    const std::string allowed = range.describe();
    return add(
        name, "number" + suffix(allowed), doc, format_number(fallback),
        [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
          const double value = parse_number(node, key, where);
          check_range(value, range, node.Scalar(), "a number", key, where);
          access(c).*field = value;
        },
        [=](const Config& c) { return format_number(access(const_cast<Config&>(c)).*field); });
  }

  SectionDecl& boolean(const std::string& name, bool Section::*field, bool fallback,
                       const std::string& doc) {
    auto access = access_;
    return add(
        name, "boolean", doc, fallback ? "true" : "false",
        [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
          access(c).*field = parse_boolean(node, key, where);
        },
        [=](const Config& c) {
          return std::string(access(const_cast<Config&>(c)).*field ? "true" : "false");
        });
  }

  SectionDecl& text(const std::string& name, std::string Section::*field,
                    const std::string& fallback, const std::string& doc) {
    auto access = access_;
    return add(
        name, "string", doc, format_text(fallback),
        [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
          access(c).*field = parse_text(node, key, where);
        },
        [=](const Config& c) { return format_text(access(const_cast<Config&>(c)).*field); });
  }

  SectionDecl& choice(const std::string& name, std::string Section::*field,
                      const std::string& fallback, const std::vector<std::string>& options,
                      const std::string& doc);

  SectionDecl& integers(const std::string& name, std::vector<int64_t> Section::*field,
                        const std::vector<int64_t>& fallback, const Range& element_range,
                        const std::string& doc) {
    auto access = access_;
    const std::string allowed = element_range.describe();
    return add(
        name, "list of integers" + suffix(allowed), doc, format_integers(fallback),
        [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
          access(c).*field = parse_integers(node, element_range, key, where);
        },
        [=](const Config& c) { return format_integers(access(const_cast<Config&>(c)).*field); });
  }

 private:
  using Assign =
      std::function<void(Config&, const YAML::Node&, const std::string&, const std::string&)>;

  static std::string suffix(const std::string& allowed) {
    return allowed.empty() ? "" : " " + allowed;
  }

  SectionDecl& add(const std::string& name, const std::string& type, const std::string& doc,
                   const std::string& default_yaml, Assign assign,
                   std::function<std::string(const Config&)> format) {
    KeySpec spec;
    spec.section = section_;
    spec.name = name;
    spec.type = type;
    spec.doc = doc;
    spec.default_yaml = default_yaml;
    const std::string key = spec.path();
    spec.assign = [assign, key](Config& c, const YAML::Node& node, const std::string& where) {
      assign(c, node, where, key);
    };
    spec.format = std::move(format);
    schema_.keys.push_back(std::move(spec));
    return *this;
  }

  Schema& schema_;
  std::string section_;
  Access access_;
};

// Checks a string against a fixed set of options, with a did-you-mean on a miss.
void check_choice(const std::string& value, const std::vector<std::string>& options,
                  const std::string& key, const std::string& where);

template <class Section>
SectionDecl<Section>& SectionDecl<Section>::choice(const std::string& name,
                                                   std::string Section::*field,
                                                   const std::string& fallback,
                                                   const std::vector<std::string>& options,
                                                   const std::string& doc) {
  auto access = access_;
  std::string type = "one of";
  for (const auto& option : options)
    type += " " + option;
  return add(
      name, type, doc, format_text(fallback),
      [=](Config& c, const YAML::Node& node, const std::string& where, const std::string& key) {
        std::string value = parse_text(node, key, where);
        check_choice(value, options, key, where);
        access(c).*field = std::move(value);
      },
      [=](const Config& c) { return format_text(access(const_cast<Config&>(c)).*field); });
}

}  // namespace ocm::config_detail
