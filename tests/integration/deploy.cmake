# deploy/ (test_deploy.sh): the systemd units' keys, every option the units
# and the example settings pass checked against the binaries' --help and
# parsed by them, cluster.example.json against the examples and
# docs/deploy.md, `systemd-analyze verify` when present, the unit copies
# CMake installs, and a CURVE cluster run from the example settings moved to
# loopback (broker restart, a lost shard's exit status, clean stops).
# Uses build/examples/hello.so when the examples are built.
add_test(NAME integration_deploy
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_deploy.sh ${PROJECT_BINARY_DIR})
set_tests_properties(integration_deploy PROPERTIES TIMEOUT 180)
