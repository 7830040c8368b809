# flashast-config.cmake: `find_package(flashast CONFIG)` for CMake projects, shipped inside the
# flashast package. `python -m flashast --cmake-dir` prints the directory holding this file:
#
#   cmake -S . -B build -G Ninja -Dflashast_DIR="$(python -m flashast --cmake-dir)"
#
#   find_package(flashast CONFIG REQUIRED)
#   flashast_generate(<out-var> OUTPUT_DIR <dir> [PRESET <name>] [ONLY <filter>...] [EXCLUDE <filter>...]
#                     [PLUGINS <file>...] [OPTIONS <arg>...] [COMPILE upstream|members|aggregators]
#                     [NO_AGGREGATORS])
#   target_sources(<target> PRIVATE ${<out-var>})   # the files to compile; <out-var>_WRITTEN: every file
#
# flashast runs with the interpreter whose flashast this file belongs to: FLASHAST_PYTHON_EXECUTABLE
# when set, else the one find_package(Python3) finds (-DPython3_EXECUTABLE=... chooses it). Finding
# fails, with the reason, when that interpreter's flashast is another installation than this one.
# FLASHAST_EXECUTABLE is that command (`python -m flashast`), for commands of the project's own, such
# as a `--check` target. Guide: docs/how-to/cmake.md.

include_guard(GLOBAL)

set(FLASHAST_PYTHON_EXECUTABLE "" CACHE FILEPATH
    "the Python interpreter that runs flashast (empty: the one find_package(Python3) finds)")

set(_flashast_python "${FLASHAST_PYTHON_EXECUTABLE}")
if(NOT _flashast_python)
  find_package(Python3 QUIET COMPONENTS Interpreter)
  set(_flashast_python "${Python3_EXECUTABLE}")
endif()
if(NOT _flashast_python)
  set(flashast_FOUND FALSE)
  set(flashast_NOT_FOUND_MESSAGE "no Python 3 interpreter found; set FLASHAST_PYTHON_EXECUTABLE to the one that has flashast")
  return()
endif()

# The interpreter must run the flashast this file came from: another installation would generate
# other files than the ones this file's version lists.
execute_process(COMMAND "${_flashast_python}" -m flashast --cmake-dir
                OUTPUT_VARIABLE _flashast_dir ERROR_VARIABLE _flashast_error RESULT_VARIABLE _flashast_status
                OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
get_filename_component(_flashast_here "${CMAKE_CURRENT_LIST_DIR}" REALPATH)
if(_flashast_status EQUAL 0)
  get_filename_component(_flashast_dir "${_flashast_dir}" REALPATH)
endif()
if(NOT _flashast_status EQUAL 0 OR NOT _flashast_dir STREQUAL _flashast_here)
  set(flashast_FOUND FALSE)
  set(flashast_NOT_FOUND_MESSAGE
      "${_flashast_python} does not run the flashast in ${_flashast_here} (`-m flashast --cmake-dir`: "
      "${_flashast_dir}${_flashast_error}); set FLASHAST_PYTHON_EXECUTABLE or Python3_EXECUTABLE to the "
      "interpreter whose `python -m flashast --cmake-dir` printed flashast_DIR")
  return()
endif()

# Kept as global properties, so that flashast_generate works in any directory of the project.
get_filename_component(_flashast_package "${_flashast_here}" DIRECTORY)
set_property(GLOBAL PROPERTY FLASHAST_PYTHON_EXECUTABLE "${_flashast_python}")
# An upgrade (or reinstall) rewrites the package's __init__.py: what the build re-runs on.
set_property(GLOBAL PROPERTY FLASHAST_PACKAGE_STAMP "${_flashast_package}/__init__.py")
set(FLASHAST_EXECUTABLE "${_flashast_python}" -m flashast)
unset(_flashast_python)
unset(_flashast_dir)
unset(_flashast_error)
unset(_flashast_status)
unset(_flashast_here)
unset(_flashast_package)

# flashast_generate(<out-var> OUTPUT_DIR <dir> ...): the kernel files of one flashast run.
#
# Configure time: `flashast --list` names the files a build compiles (nothing is verified or written),
# and <out-var> is set to their absolute paths; <out-var>_WRITTEN to every file the run writes, which
# includes the files compiled only inside an aggregator (flash-attention 3). Build time: a custom
# command writes and verifies them, re-run
# when a plugin file or flashast itself changes (or the command line does). Its outputs are
# BYPRODUCTS, so Ninja checks their mtimes after it runs (restat): flashast rewrites only files whose
# bytes change, and a file it left alone recompiles nothing. The configure step re-runs when a plugin
# file or flashast changes, since either can change the list.
#
#   OUTPUT_DIR <dir>     flashast's output directory (relative: to the current binary directory)
#   PRESET <name>        --preset
#   ONLY <filter>...     --only, once per filter
#   EXCLUDE <filter>...  --exclude, once per filter
#   PLUGINS <file>...    --plugin FILE.py, once per file (relative: to the current source directory)
#   OPTIONS <arg>...     more arguments for the build-time run only (verification, --prune, ...)
#   COMPILE <policy>     --compile: an aggregator or its members in <out-var> (default: as upstream)
#   NO_AGGREGATORS       --exclude aggregator=true: write no aggregator, compile the files they include
#
# Also defines the target flashast_<out-var>, built by default; a target in another directory that
# compiles the files needs add_dependencies(<target> flashast_<out-var>).
function(flashast_generate out_var)
  cmake_parse_arguments(PARSE_ARGV 1 arg "NO_AGGREGATORS" "OUTPUT_DIR;PRESET;COMPILE" "ONLY;EXCLUDE;PLUGINS;OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "flashast_generate(${out_var}): unknown argument(s): ${arg_UNPARSED_ARGUMENTS}")
  endif()
  # An empty value (most often an unset variable: ONLY ${MY_FILTER}) would silently widen the run to
  # the whole preset, since an empty argument vanishes from a command line; refused with flashast's line.
  foreach(pair IN ITEMS PRESET:--preset ONLY:--only EXCLUDE:--exclude PLUGINS:--plugin COMPILE:--compile)
    string(REPLACE ":" ";" pair "${pair}")
    list(GET pair 0 keyword)
    list(GET pair 1 option)
    if(keyword IN_LIST arg_KEYWORDS_MISSING_VALUES OR (DEFINED arg_${keyword} AND ";${arg_${keyword}};" MATCHES ";;"))
      message(FATAL_ERROR "flashast_generate(${out_var}): flashast: error: ${option} '': empty value"
                          " (${keyword} was given an empty string or an unset variable)")
    endif()
  endforeach()
  if(NOT arg_OUTPUT_DIR)
    message(FATAL_ERROR "flashast_generate(${out_var}): OUTPUT_DIR <dir> is required")
  endif()
  set(target "flashast_${out_var}")
  if(TARGET "${target}")
    message(FATAL_ERROR "flashast_generate(${out_var}): ${out_var} is already generated by ${target}; use another variable name")
  endif()
  get_property(python GLOBAL PROPERTY FLASHAST_PYTHON_EXECUTABLE)
  get_property(package_stamp GLOBAL PROPERTY FLASHAST_PACKAGE_STAMP)

  get_filename_component(output_dir "${arg_OUTPUT_DIR}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  set(selection -o "${output_dir}")
  if(arg_PRESET)
    list(APPEND selection --preset "${arg_PRESET}")
  endif()
  foreach(filter IN LISTS arg_ONLY)
    list(APPEND selection --only "${filter}")
  endforeach()
  foreach(filter IN LISTS arg_EXCLUDE)
    list(APPEND selection --exclude "${filter}")
  endforeach()
  if(arg_NO_AGGREGATORS)
    list(APPEND selection --exclude aggregator=true)
  endif()
  set(plugins "")
  foreach(plugin IN LISTS arg_PLUGINS)
    get_filename_component(plugin "${plugin}" ABSOLUTE BASE_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
    list(APPEND plugins "${plugin}")
    list(APPEND selection --plugin "${plugin}")
  endforeach()

  set(compile "")
  if(DEFINED arg_COMPILE)
    set(compile --compile "${arg_COMPILE}")
  endif()

  # Configure time: the exact lists, of the files a build compiles and of every file the run writes
  # (the custom command's byproducts, so that a member an aggregator includes is looked at again
  # once written). A bad filter or a broken plugin stops here, with flashast's line.
  foreach(listing IN ITEMS compiled written)
    if(listing STREQUAL "compiled")
      set(list_option --list ${compile})
    else()
      set(list_option --list=written)
    endif()
    execute_process(COMMAND "${python}" -m flashast ${selection} ${list_option}
                    OUTPUT_VARIABLE listed ERROR_VARIABLE errors RESULT_VARIABLE status
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_STRIP_TRAILING_WHITESPACE)
    if(NOT status EQUAL 0)
      # Indented lines are printed as they are: flashast's one-line error stays one line.
      string(REPLACE "\n" "\n  " errors "  ${errors}")
      message(FATAL_ERROR "flashast_generate(${out_var}): flashast --list failed (exit ${status}):\n${errors}")
    endif()
    string(REPLACE "\n" ";" ${listing} "${listed}")
  endforeach()
  list(LENGTH written count)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${plugins} "${package_stamp}")

  # Build time: write and verify; the stamp records that this exact command succeeded.
  set(stamp "${CMAKE_CURRENT_BINARY_DIR}/CMakeFiles/${target}.stamp")
  add_custom_command(
    OUTPUT "${stamp}"
    COMMAND "${python}" -m flashast ${selection} ${arg_OPTIONS}
    COMMAND "${CMAKE_COMMAND}" -E touch "${stamp}"
    BYPRODUCTS ${written}
    DEPENDS ${plugins} "${package_stamp}"
    COMMENT "flashast: ${out_var}: writing and verifying ${count} files in ${arg_OUTPUT_DIR}"
    VERBATIM)
  add_custom_target("${target}" ALL DEPENDS "${stamp}")
  set("${out_var}" ${compiled} PARENT_SCOPE)
  set("${out_var}_WRITTEN" ${written} PARENT_SCOPE)
endfunction()
