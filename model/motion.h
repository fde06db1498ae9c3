/*
 * motion.h - an object's motion: a Kalman filter on its box (internal to model/).
 *
 * The state is the box's centre, with a velocity in pixels per frame (constant velocity, as in
 * SORT and DeepSORT), and its width and height, which follow a random walk: a box's sides do
 * not keep growing or shrinking on their own (a person's box is as wide as the person however
 * they walk), they drift slowly where the measurements keep taking them (a person walking
 * nearer). The four coordinates are filtered independently: the noise is diagonal and the
 * dynamics couple each centre coordinate only with its own velocity, so the filter factors
 * exactly into two 2-dimensional filters and two 1-dimensional ones. The noise scales with the
 * box's size, as in DeepSORT: a person far away moves fewer pixels per frame than one near the
 * camera.
 *
 * After frames without a measurement (an occlusion), the next measurement is not used at once:
 * the filter goes back to its state at the last measurement and is re-run along the straight
 * path between the two measurements, one virtual measurement per frame (OC-SORT's
 * observation-centric re-update), so the velocity afterwards is the one of the path actually
 * taken rather than a guess drifted during the gap.
 */
#ifndef VT_MOTION_H
#define VT_MOTION_H

#include <stdint.h>

typedef struct vt_motion_axis {
    double x, v;          /* value and velocity (per frame; always 0 for the sides) */
    double pxx, pxv, pvv; /* covariance */
} vt_motion_axis;

typedef struct vt_motion {
    vt_motion_axis a[4]; /* cx, cy, w, h */
    int64_t frame;       /* frames predicted so far (the filter's clock) */
    /* The last measurement and the filter's state right after it (for the re-update). */
    float last_box[4];
    int64_t last_frame;
    vt_motion_axis last_a[4];
} vt_motion;

/*
 * Noise levels, as fractions of the box's larger side (the height for a person, the length for
 * a car). The centre's are DeepSORT's (1/20 and 1/160 of a person's height). A side measured
 * from a mask is noisier than its centre (a leg swings, a sliver of background is taken along),
 * and the side itself changes far more slowly than the centre moves: a mask twice as wide for a
 * frame moves the box's width a little, not to the double.
 */
#define VT_MOTION_STD_POS       0.05    /* centre: process and measurement noise */
#define VT_MOTION_STD_VEL       0.00625 /* centre: process noise of the velocity */
#define VT_MOTION_STD_SIDE      0.005   /* sides: process noise */
#define VT_MOTION_STD_SIDE_MEAS 0.1     /* sides: measurement noise */

/* Start from a given box (x, y, w, h) at the filter's frame 0, velocity 0. The box is given,
 * not detected: it starts as certain as one step of the process; the velocity is unknown
 * (DeepSORT's 10 x its process noise). */
void vtm_motion_init(vt_motion *m, const float box[4]);

/* Advance one frame: predict the box of the next frame. */
void vtm_motion_predict(vt_motion *m);

/*
 * Correct the current prediction with a measured box (x, y, w, h). `trust[i]` scales coordinate
 * i's measurement noise: 1 normal, larger for a doubtful measurement (a partly hidden object's
 * side), 0 or less leaves that coordinate to the prediction. When frames passed since the last
 * measurement, the filter is re-run along the path first (see above). Several measurements of
 * one frame are applied in turn.
 */
void vtm_motion_update(vt_motion *m, const float box[4], const double trust[4]);

/* The current box (x, y, w, h). Width and height are at least 1. */
void vtm_motion_box(const vt_motion *m, float box[4]);

/* Standard deviation of the centre's position, pixels (the larger of x and y). */
double vtm_motion_pos_std(const vt_motion *m);

#endif
