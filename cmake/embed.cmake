# embed.cmake - turn a file into a C array: cmake -DIN=f -DOUT=f.c -DNAME=sym -P embed.cmake
# Defines `const char NAME[]` (NUL-terminated) and `const size_t NAME_len`.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " body "${body}")
file(WRITE "${OUT}" "/* generated from ${IN} by cmake/embed.cmake: do not edit */\n#include <stddef.h>\nconst char ${NAME}[] = {\n    ${body}0x00};\nconst size_t ${NAME}_len = ${len};\n")
