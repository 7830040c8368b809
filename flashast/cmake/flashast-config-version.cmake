# flashast-config-version.cmake: lets `find_package(flashast <version> CONFIG)` check the version.
# A test keeps PACKAGE_VERSION equal to flashast.__version__. Compatible: not older than the version
# asked for, with the same major version (and, while the major version is 0, the same minor).
set(PACKAGE_VERSION "0.2.0")

string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _flashast_version "${PACKAGE_VERSION}")
set(PACKAGE_VERSION_COMPATIBLE TRUE)
if(NOT "${PACKAGE_FIND_VERSION}" STREQUAL "")
  if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  elseif(NOT "${PACKAGE_FIND_VERSION_MAJOR}" STREQUAL "${CMAKE_MATCH_1}")
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  elseif("${CMAKE_MATCH_1}" STREQUAL "0" AND NOT "${PACKAGE_FIND_VERSION_MINOR}" STREQUAL "${CMAKE_MATCH_2}")
    set(PACKAGE_VERSION_COMPATIBLE FALSE)
  endif()
  if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
unset(_flashast_version)
