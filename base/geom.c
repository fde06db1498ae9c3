/* geom.c - see vt_base.h ("Boxes"). */
#include "vt_base.h"

double vt_box_iou(const double a[4], const double b[4]) {
    if (!(a[2] > 0 && a[3] > 0 && b[2] > 0 && b[3] > 0))
        return 0;
    const double x0 = a[0] > b[0] ? a[0] : b[0], y0 = a[1] > b[1] ? a[1] : b[1];
    const double x1 = a[0] + a[2] < b[0] + b[2] ? a[0] + a[2] : b[0] + b[2];
    const double y1 = a[1] + a[3] < b[1] + b[3] ? a[1] + a[3] : b[1] + b[3];
    if (x1 <= x0 || y1 <= y0)
        return 0;
    const double inter = (x1 - x0) * (y1 - y0), uni = a[2] * a[3] + b[2] * b[3] - inter;
    return uni > 0 ? inter / uni : 0;
}
