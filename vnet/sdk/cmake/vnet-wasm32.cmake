# CMake toolchain file for vnet guests: wasm32-wasip1 with the vnet SDK.
#
#   cmake -DCMAKE_TOOLCHAIN_FILE="$(vnet cc --print-toolchain)" -B build .
#
# The compilers are `vnet cc` / `vnet c++` (zig cc -target wasm32-wasi plus
# the SDK's headers, emulation macros and, at link time, its archive); the
# archiver is `vnet ar` (llvm-ar, which indexes wasm objects). The `vnet`
# command is found on PATH, or named by the VNET environment variable or
# -DVNET=/path/to/vnet. Small wrapper scripts are written into the build
# directory, because CMake wants one program per tool.

cmake_minimum_required(VERSION 3.20)

list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")
set(CMAKE_SYSTEM_NAME WASI)
set(CMAKE_SYSTEM_VERSION 1)
set(CMAKE_SYSTEM_PROCESSOR wasm32)

if(NOT DEFINED VNET)
  if(DEFINED ENV{VNET})
    set(VNET "$ENV{VNET}")
  else()
    find_program(VNET vnet REQUIRED)
  endif()
endif()

set(_vnet_wrap "${CMAKE_BINARY_DIR}/vnet-tools")
foreach(_tool cc c++ ar ranlib)
  if(NOT EXISTS "${_vnet_wrap}/vnet-${_tool}")
    file(WRITE "${_vnet_wrap}/tmp/vnet-${_tool}" "#!/bin/sh\nexec \"${VNET}\" ${_tool} \"$@\"\n")
    file(COPY "${_vnet_wrap}/tmp/vnet-${_tool}" DESTINATION "${_vnet_wrap}"
         FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                          WORLD_READ WORLD_EXECUTE)
  endif()
endforeach()

set(CMAKE_C_COMPILER "${_vnet_wrap}/vnet-cc")
set(CMAKE_CXX_COMPILER "${_vnet_wrap}/vnet-c++")
set(CMAKE_AR "${_vnet_wrap}/vnet-ar" CACHE FILEPATH "" FORCE)
set(CMAKE_RANLIB "${_vnet_wrap}/vnet-ranlib" CACHE FILEPATH "" FORCE)
set(CMAKE_EXECUTABLE_SUFFIX ".wasm")
set(CMAKE_EXECUTABLE_SUFFIX_C ".wasm")
set(CMAKE_EXECUTABLE_SUFFIX_CXX ".wasm")

# A guest is one static module: no shared libraries.
set(BUILD_SHARED_LIBS OFF CACHE BOOL "" FORCE)
set_property(GLOBAL PROPERTY TARGET_SUPPORTS_SHARED_LIBS FALSE)

set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
