/* clock.h - the engine's clock, replaceable by unit tests. */
#ifndef NEARFS_CLOCK_H
#define NEARFS_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC, unless a test installed a fake. */
extern uint64_t (*clock_now_ms)(void);

/* Milliseconds of CLOCK_REALTIME, for times stored across restarts. */
extern int64_t (*clock_wall_ms)(void);

#endif
