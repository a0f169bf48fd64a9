# Note [one precompiled torch header]
# A translation unit that includes <torch/torch.h> costs ~30 s and 1.3 GB on our 2-core machines.
# One target compiles the header once; every target that uses torch reuses that PCH instead of
# building its own, so a clean build pays for torch's headers once.
add_library(ocm_torch_pch STATIC EXCLUDE_FROM_ALL ${CMAKE_CURRENT_LIST_DIR}/torch_pch.cpp)
target_link_libraries(ocm_torch_pch PUBLIC torch)
target_precompile_headers(ocm_torch_pch PRIVATE <torch/torch.h>)

# Note [unity libraries]
# The PCH saves parsing torch's headers, not instantiating and compiling its inline code, which
# every torch-using unit still pays. Compiling each library as unity units of up to 8 sources
# pays that once per batch: measured on 2 cores, ocm_diffusion 150 s -> 35 s and the whole `ocm`
# target 13.6 -> 6.4 min. The price is that file-local names must not collide across a folder;
# diffusion/families.h gives each network family its own namespace for that reason, and each
# subcommand of apps/ has one named after its file. Tests stay one unit per file.

# ocm_library(NAME SOURCES ... [DEPENDS ...] [TORCH])
#   One static library per code folder, named ocm_<folder>; headers are included as "folder/x.h".
function(ocm_library name)
  cmake_parse_arguments(arg "TORCH" "" "SOURCES;DEPENDS" ${ARGN})
  if(NOT arg_SOURCES)
    message(FATAL_ERROR "ocm_library(${name}) lists no SOURCES; every code folder has code.")
  endif()
  add_library(${name} STATIC ${arg_SOURCES})
  set_target_properties(${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(${name} PUBLIC ${arg_DEPENDS})
  target_compile_options(${name} PRIVATE -Wall -Wextra)
  if(arg_TORCH)
    target_link_libraries(${name} PUBLIC torch)
    target_precompile_headers(${name} REUSE_FROM ocm_torch_pch)
  endif()
endfunction()
