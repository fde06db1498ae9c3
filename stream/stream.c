#include "vt_stream.h"
int vt_stream_placeholder(void) { return 0; }
