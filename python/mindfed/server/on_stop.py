"""What stopping a server that holds updates of the running iteration does to that iteration (`--on_stop`).

Its own module so that the job API and the command line name the choices without importing the server.
"""

FAIL_ITERATION = "fail_iteration"  # MindSpore's behaviour: the iteration fails and the cluster moves on at once
HAND_OVER = "hand_over"  # the peers finish the iteration with the stopped server's logged updates, as after a crash
ON_STOP_CHOICES = (FAIL_ITERATION, HAND_OVER)
