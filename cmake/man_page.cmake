# Turns one Markdown man page source (docs/man/NAME.SECTION.md) into roff with go-md2man.
# Run as: cmake -DMD2MAN=... -DIN=... -DOUT=... -DVERSION=... -P man_page.cmake
#
# The sources are shared with docs/usage.md (scripts/sync-docs.sh copies sections into it), so
# their links point into usage.md: a link to one of its sections becomes "TEXT in usage.md",
# any other link its text.
cmake_policy(VERSION 3.25)
file(READ "${IN}" text)
string(REPLACE "@VERSION@" "${VERSION}" text "${text}")
string(REGEX REPLACE "\\[([^]]*)\\]\\(#[^)]*\\)" "\\1 in usage.md" text "${text}")
string(REGEX REPLACE "\\[([^]]*)\\]\\([^)]*\\)" "\\1" text "${text}")
file(WRITE "${OUT}.md" "${text}")
execute_process(COMMAND "${MD2MAN}" -in "${OUT}.md" -out "${OUT}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "go-md2man failed on ${IN}")
endif()
# go-md2man 2.0.2 leaves a text line that starts with an apostrophe as it is, and troff reads
# such a line as a request ('GROUP' ...); \& in front makes it text.
file(READ "${OUT}" roff)
string(REGEX REPLACE "\n'" "\n\\\\&'" roff "${roff}")
file(WRITE "${OUT}" "${roff}")
file(REMOVE "${OUT}.md")
