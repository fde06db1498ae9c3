#include "vt_proto.h"
int vt_proto_placeholder(void) { return VT_PROTO_VERSION; }
