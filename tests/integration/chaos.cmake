# The chaos suite (test_chaos.py): a broker, two front and two back shards
# under steady load while each is killed with -9 and stopped with SIGSTOP in
# turn; chaos_test_app.so is what the back shards run.
add_library(skick_chaos_test_app MODULE ${CMAKE_CURRENT_LIST_DIR}/chaos_app.c)
set_target_properties(skick_chaos_test_app PROPERTIES PREFIX "" OUTPUT_NAME chaos_test_app)
target_link_libraries(skick_chaos_test_app PRIVATE skick)
add_test(NAME integration_chaos
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_chaos.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_chaos PROPERTIES TIMEOUT 900)
