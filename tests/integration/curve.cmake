# Secure by default (issue 16): `skickctl up` makes a CURVE cluster with one
# key per role; rogue pyzmq peers with no key, an unknown key or a key of the
# wrong role get nothing; --insecure warns in every process; secret key files
# others can read and non-loopback binds without CURVE are refused.
add_test(NAME integration_curve_roles
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_curve_roles.py ${PROJECT_BINARY_DIR})
set_tests_properties(integration_curve_roles PROPERTIES TIMEOUT 120)
