#pragma once

#include <string>

namespace ocm {

// Lowercase hex SHA-256 of a file's bytes. Throws UserError when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace ocm
