# Every outside dependency is found here, once, through find_package.

function(ocm_resolve_backend option found what)
  if(${option} STREQUAL "ON" AND NOT ${found})
    message(FATAL_ERROR "${option}=ON but ${what} was not found. Install it, point CMAKE_PREFIX_PATH "
                        "at it, or configure with -D${option}=AUTO.")
  endif()
  if(${option} STREQUAL "OFF")
    set(result OFF)
  elseif(${found})
    set(result ON)
  else()
    set(result OFF)
  endif()
  string(REPLACE "OCM_WITH_" "OCM_HAVE_" have ${option})
  set(${have} ${result} PARENT_SCOPE)
endfunction()

foreach(option OCM_WITH_CUDA OCM_WITH_NCCL OCM_WITH_MPI)
  if(NOT ${option} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${option} is '${${option}}'; expected AUTO, ON or OFF.")
  endif()
endforeach()

find_package(Torch REQUIRED)
# A CUDA-enabled LibTorch exports torch_cuda; Debian's CPU build does not.
if(TARGET torch_cuda)
  set(ocm_torch_has_cuda ON)
else()
  set(ocm_torch_has_cuda OFF)
endif()
ocm_resolve_backend(OCM_WITH_CUDA ocm_torch_has_cuda "a CUDA-enabled LibTorch")

find_package(CUDAToolkit QUIET)
find_path(NCCL_INCLUDE_DIR nccl.h
  HINTS ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
  HINTS ENV NCCL_ROOT ENV NCCL_HOME ${CUDAToolkit_LIBRARY_DIR} PATH_SUFFIXES lib lib64)
if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND TARGET CUDA::cudart)
  set(ocm_nccl_found ON)
else()
  set(ocm_nccl_found OFF)
endif()
ocm_resolve_backend(OCM_WITH_NCCL ocm_nccl_found "NCCL (nccl.h, libnccl) with the CUDA runtime")
if(OCM_HAVE_NCCL)
  add_library(ocm::nccl INTERFACE IMPORTED)
  target_include_directories(ocm::nccl INTERFACE ${NCCL_INCLUDE_DIR})
  target_link_libraries(ocm::nccl INTERFACE ${NCCL_LIBRARY} CUDA::cudart)
endif()

if(NOT OCM_WITH_MPI STREQUAL "OFF")
  find_package(MPI COMPONENTS C)
endif()
ocm_resolve_backend(OCM_WITH_MPI MPI_C_FOUND "MPI (C bindings)")
if(OCM_HAVE_MPI)
  # We use the C API only; Open MPI's and MPICH's C++ bindings would need their own library.
  set_property(TARGET MPI::MPI_C APPEND PROPERTY INTERFACE_COMPILE_DEFINITIONS
               OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
endif()

find_package(HDF5 REQUIRED COMPONENTS C)
find_package(nlohmann_json REQUIRED)
find_package(ZLIB REQUIRED)
# stb (image decoding) ships no CMake config; Debian builds it into libstb.
find_path(STB_INCLUDE_DIR stb/stb_image.h REQUIRED)
find_library(STB_LIBRARY stb REQUIRED)
add_library(ocm::stb INTERFACE IMPORTED)
target_include_directories(ocm::stb INTERFACE ${STB_INCLUDE_DIR})
target_link_libraries(ocm::stb INTERFACE ${STB_LIBRARY})
# minizip (zlib's contrib zip library) reads and writes .npz archives; no CMake config either.
find_path(MINIZIP_INCLUDE_DIR minizip/zip.h REQUIRED)
find_library(MINIZIP_LIBRARY minizip REQUIRED)
add_library(ocm::minizip INTERFACE IMPORTED)
target_include_directories(ocm::minizip INTERFACE ${MINIZIP_INCLUDE_DIR})
target_link_libraries(ocm::minizip INTERFACE ${MINIZIP_LIBRARY} ZLIB::ZLIB)
# Plot text is set in DejaVu Sans; its path is compiled in (OCM_FONT overrides it at run time).
find_file(OCM_FONT_FILE DejaVuSans.ttf
  PATHS /usr/share/fonts/truetype /usr/share/fonts /usr/local/share/fonts
  PATH_SUFFIXES dejavu truetype/dejavu
  DOC "DejaVu Sans, the TrueType font of ocm's plots")
if(NOT OCM_FONT_FILE)
  message(FATAL_ERROR "DejaVuSans.ttf was not found. Install the Debian package fonts-dejavu-core "
                      "(launch/setup.sh does), or configure with -DOCM_FONT_FILE=/path/to/font.ttf.")
endif()
find_package(yaml-cpp REQUIRED)
find_package(spdlog REQUIRED)
# Note [fmt before torch]
# LibTorch 2.x puts its own, newer fmt headers in its include directory, and spdlog only compiles
# against the fmt it was built with. The fmt that spdlog found is therefore searched first, in
# every target. (Debian's LibTorch 1.13 ships no fmt, and /usr/include is left out by CMake.)
if(TARGET fmt::fmt)
  get_target_property(ocm_fmt_include fmt::fmt INTERFACE_INCLUDE_DIRECTORIES)
  include_directories(BEFORE SYSTEM ${ocm_fmt_include})
endif()
find_package(CLI11 REQUIRED)
if(OCM_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
