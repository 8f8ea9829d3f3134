/* A program outside the tree, built against an installed libpmm. */
#include <pmm/pmm.h>
#include <stdio.h>

int main(void) {
  pmm_conn* conn;
  pmm_block* block;
  if (pmm_connect(NULL, "consumer", &conn) != PMM_OK ||
      pmm_alloc(conn, "general", 1 << 20, 0, PMM_ALLOC_ZERO, &block) != PMM_OK) {
    fprintf(stderr, "consumer: %s\n", pmm_last_error());
    return 1;
  }
  printf("consumer: %llu bytes in %s\n", (unsigned long long)pmm_block_size(block),
         pmm_block_pool(block));
  pmm_block_put(block);
  pmm_disconnect(conn);
  return 0;
}
