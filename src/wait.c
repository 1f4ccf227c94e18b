/*
 * wait.c - the one wait point (design §2).
 *
 * Every Connector/C call that waits on the network runs as a _start/_cont pair;
 * between steps the library hands back what it waits for (read, write,
 * exception, timeout) and we wait here. A connection made with a scheduler
 * runs its calls on a fiber (fiber.c): then the wait suspends only the
 * calling coroutine; otherwise it blocks in poll(). No second code path.
 *
 * Timeouts: the library itself asks for MYSQL_WAIT_TIMEOUT with the
 * connect/read/write timeout that applies to the current step (the options
 * given to connect), so honouring mysql_get_timeout_value_ms() here is what
 * makes those timeouts hold. On expiry we resume it with MYSQL_WAIT_TIMEOUT
 * and it fails the call (client error 2013 or 2002 for connect).
 */
#include "ar.h"

#if AR_NONBLOCKING
#include <errno.h>
#include <poll.h>
#include <time.h>

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ar_wait(MYSQL *m, int status) {
  if (ar_fiber_waits(m)) return ar_fiber_wait(m, status); /* scheduler mode */
  struct pollfd pfd;
  int timeout = -1;
  long long deadline = 0;
  pfd.fd = (int)mysql_get_socket(m);
  pfd.events = (short)((status & MYSQL_WAIT_READ ? POLLIN : 0) |
                       (status & MYSQL_WAIT_WRITE ? POLLOUT : 0) |
                       (status & MYSQL_WAIT_EXCEPT ? POLLPRI : 0));
  pfd.revents = 0;
  if (status & MYSQL_WAIT_TIMEOUT) {
    timeout = (int)mysql_get_timeout_value_ms(m);
    deadline = now_ms() + timeout;
  }
  for (;;) {
    int rc = poll(&pfd, 1, timeout);
    if (rc > 0) break;
    if (rc == 0) return MYSQL_WAIT_TIMEOUT;
    if (errno != EINTR) return MYSQL_WAIT_TIMEOUT; /* library reports the failure */
    if (timeout >= 0) {
      long long left = deadline - now_ms();
      timeout = left > 0 ? (int)left : 0;
    }
  }
  return ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) ? MYSQL_WAIT_READ : 0) |
         ((pfd.revents & (POLLOUT | POLLHUP | POLLERR)) ? MYSQL_WAIT_WRITE : 0) |
         ((pfd.revents & POLLPRI) ? MYSQL_WAIT_EXCEPT : 0);
}
#else
int ar_wait(MYSQL *m, int status) {
  (void)m;
  return status;
}
#endif
