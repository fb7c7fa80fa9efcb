# Compiles one public header on its own (a translation unit that includes only it) and, for the
# core's and the thread pool's headers (LAYER=core), fails if the headers it pulls in include
# Boost.Serialization, Boost.Archive, Asio or futura's process transport and shared memory.
#
#   cmake -DCXX=<compiler> -DINCLUDES=<dir|dir...> -DHEADER=futura/x.hpp -DLAYER=core|other
#         -DWORK=<scratch dir> -P check_header.cmake
string(REPLACE "|" ";" include_dirs "${INCLUDES}")
set(flags -std=c++20 -fsyntax-only -H)
foreach(dir IN LISTS include_dirs)
    list(APPEND flags -I${dir})
endforeach()
string(MAKE_C_IDENTIFIER "${HEADER}" name)
file(MAKE_DIRECTORY ${WORK})
set(source ${WORK}/${name}.cpp)
file(WRITE ${source} "#include <${HEADER}>\n")
execute_process(COMMAND ${CXX} ${flags} ${source}
    RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE included)
if(NOT status EQUAL 0)
    message(FATAL_ERROR "${HEADER} does not compile on its own:\n${included}")
endif()
if(LAYER STREQUAL "core")
    # -H prints one line per header opened, dots giving the depth.
    string(REGEX MATCHALL "[^\n]*(boost/serialization/|boost/archive/|boost/asio[/.]|futura/transferable\\.hpp|futura/shared_[a-z_]*\\.hpp|futura/mapped_array\\.hpp|futura/process_pool_executor\\.hpp|futura/detail/(remote_call|remote_task|travelling_task|wire|protocol|channel|attachments|unique_fd|descriptor_budget|bounded_iarchive|segment|segment_array|shared_block|worker[a-z_]*|call_claims|scheduler)\\.hpp)[^\n]*"
        forbidden "${included}")
    if(forbidden)
        list(GET forbidden 0 first)
        list(LENGTH forbidden count)
        message(FATAL_ERROR "${HEADER} belongs to the core (or the thread pool) but pulls in "
            "${count} header(s) of the process transport, shared memory or Asio; the first: "
            "${first}\n(see \"Layers\" in doc/design.md: the core includes none of them)")
    endif()
endif()
message(STATUS "${HEADER}: compiles on its own")
