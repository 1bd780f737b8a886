# skick-amqp-bridge against a real RabbitMQ (test_amqp_bridge.py): the actors
# it drives, and the suite (rabbitmq-server, python3-pika, amqp-tools).
add_library(skick_amqp_test_app MODULE ${CMAKE_CURRENT_LIST_DIR}/amqp_app.c)
set_target_properties(skick_amqp_test_app PROPERTIES PREFIX "" OUTPUT_NAME amqp_test_app)
target_link_libraries(skick_amqp_test_app PRIVATE skick)
add_test(NAME integration_amqp_bridge
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_amqp_bridge.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_amqp_bridge PROPERTIES TIMEOUT 300 LABELS integration)
# --seed-compat: a fake Python Skick shard (pika, SEED-SPEC.md 8.2) on the same RabbitMQ
add_test(NAME integration_amqp_seed
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_LIST_DIR}/test_amqp_seed.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_amqp_seed PROPERTIES TIMEOUT 300 LABELS integration)
