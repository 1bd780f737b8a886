/*  example_client - ask an actor from outside the cluster (docs/skickctl.md)

    Usage: skick-client-example CONTROL_ENDPOINT ADDRESS
      e.g. skick-client-example ipc:///tmp/skick-1000/run/control \
               0123456789abcdef:fedcba9876543210

    Adds 5 to an accumulator (examples/accumulator.c) and reads its tally:
    one confirmed send, one ask. Exit status 0, or 1 with the error.
*/
#include <stdio.h>

#include "skick/client.h"

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONTROL_ENDPOINT ADDRESS\n", argv[0]);
        return 2;
    }
    skick_client_opts_t opts = {.timeout_ms = 3000};
    skick_client_t *client = skick_client_connect(argv[1], &opts); /* ours to destroy */
    if (!client) {
        fprintf(stderr, "connect: %s: %s\n", skick_err_name(skick_errno()),
                skick_client_last_error());
        return 1;
    }
    int status = 1;
    /* Messages are borrowed: the library serializes them, we put them. */
    json_object *add = json_tokener_parse("{\"action\": \"add\", \"number\": 5}");
    json_object *get = json_tokener_parse("{\"action\": \"get_tally\"}");
    json_object *answer = NULL;
    if (skick_client_send_confirm(client, argv[2], add, 0) != 0)
        fprintf(stderr, "send: %s: %s\n", skick_err_name(skick_errno()), skick_client_last_error());
    else if (skick_client_ask(client, argv[2], get, 2000, &answer) != 0)
        fprintf(stderr, "ask: %s: %s\n", skick_err_name(skick_errno()), skick_client_last_error());
    else {
        printf("%s\n", json_object_to_json_string(answer)); /* {"tally": ...} */
        status = 0;
    }
    json_object_put(answer); /* the answer is ours (NULL-safe) */
    json_object_put(add);
    json_object_put(get);
    skick_client_destroy(&client);
    return status;
}
