#include "vt_codec.h"
int vt_codec_placeholder(void) { return 0; }
