# Helpers that give every Orrery target the same flags, so components stay uniform.

set(ORRERY_WARNINGS -Wall -Wextra -Wpedantic $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
    -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wimplicit-fallthrough
    -Wno-missing-field-initializers)
if(ORRERY_WERROR)
  list(APPEND ORRERY_WARNINGS -Werror)
endif()

add_library(orrery_flags INTERFACE)
target_compile_options(orrery_flags INTERFACE ${ORRERY_WARNINGS})
target_compile_definitions(orrery_flags INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_BOOST_COROUTINE SPDLOG_FMT_EXTERNAL)
if(ORRERY_SANITIZE)
  target_compile_options(orrery_flags INTERFACE -fsanitize=address,undefined
    -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_link_options(orrery_flags INTERFACE -fsanitize=address,undefined)
endif()

# orrery_library(NAME <name> SOURCES ... [DEPS ...])
# A component library; its headers are included as "<component>/<file>.h" from src/.
function(orrery_library)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_library(${ARG_NAME} STATIC ${ARG_SOURCES})
  target_include_directories(${ARG_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${ARG_NAME} PUBLIC orrery_flags ${ARG_DEPS})
endfunction()

# orrery_test(NAME <name> SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [NEEDS_BINARY])
# A GoogleTest executable registered with CTest; LABELS default to "unit". NEEDS_BINARY
# passes the path of the real `orrery` executable in ORRERY_BINARY (integration tests).
function(orrery_test)
  cmake_parse_arguments(ARG "NEEDS_BINARY" "NAME;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  if(NOT ARG_LABELS)
    set(ARG_LABELS unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${ARG_NAME} ${ARG_SOURCES})
  target_link_libraries(${ARG_NAME} PRIVATE orrery_flags ${ARG_DEPS} GTest::gtest GTest::gmock
                        GTest::gtest_main)
  set(env "ORRERY_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
  if(ARG_NEEDS_BINARY)
    list(APPEND env "ORRERY_BINARY=$<TARGET_FILE:orrery>")
    add_dependencies(${ARG_NAME} orrery)
  endif()
  add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
  set_tests_properties(${ARG_NAME} PROPERTIES LABELS "${ARG_LABELS}" TIMEOUT ${ARG_TIMEOUT}
    ENVIRONMENT "${env}")
endfunction()
