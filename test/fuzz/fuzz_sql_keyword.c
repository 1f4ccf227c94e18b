/* fuzz_sql_keyword.c - the keyword scan of statement text (statement.c:
 * ar_is_ddl / first_keyword), which reads user-supplied SQL. Also checks
 * that blanks, parentheses and a comment in front change nothing. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = fuzz_cstring(data, size);
  int ddl = ar_is_ddl(s);
  if (ddl != 0 && ddl != 1) abort();
  static const char prefix[] = " (\t/* comment */\n";
  size_t n = strlen(s); /* stops at an embedded NUL, as the core does */
  char *t = (char *)malloc(sizeof prefix + n);
  if (!t) abort();
  memcpy(t, prefix, sizeof prefix - 1);
  memcpy(t + sizeof prefix - 1, s, n + 1);
  if (ar_is_ddl(t) != ddl) {
    fprintf(stderr, "a leading comment changed the verdict for \"%s\"\n", s);
    abort();
  }
  free(t);
  free(s);
  return 0;
}
