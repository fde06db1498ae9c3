/*
 * ground.h - the ground plane of a fixed camera, learnt from the boxes users give (internal to
 * model/).
 *
 * A fixed camera looks down at a flat ground: an object standing on it with its feet at image
 * row y_b looks a(y_b - y_0) pixels tall, where y_0 is the horizon's row and a depends on the
 * camera's height and the object's real height (a pinhole camera, a level ground, objects of
 * about one height: the people of a street). The boxes given to register objects are such
 * measurements; a least-squares line through their (bottom, height) pairs gives a and y_0 once
 * there are enough of them, spread over enough of the frame's height, and agreeing with one
 * line. Each object keeps its own ratio to the line (a child, a person seen half-sitting), so
 * the line gives its height wherever it walks.
 *
 * The tracker uses it where nothing else measures an object's size: an object a few feature
 * cells wide, whose mask is a blur of a few cells (track.c, object_observe).
 */
#ifndef VT_GROUND_H
#define VT_GROUND_H

/* Boxes kept (the oldest one is replaced). */
#define VT_GROUND_MAX 64

typedef struct vt_ground {
    float bottom[VT_GROUND_MAX], height[VT_GROUND_MAX]; /* the given boxes, source pixels */
    int n, next;
    int ok;       /* a and y0 hold a trusted line */
    double a, y0; /* height = a (bottom - y0) */
} vt_ground;

void vtm_ground_reset(vt_ground *g);

/*
 * Learn from a box (x, y, w, h) given on a frame of frame_h rows; a box cut by the frame's top
 * or bottom edge, or narrower than tall (not a standing object), is not a measurement. The line
 * is trusted from 3 boxes whose bottoms span at least a tenth of the frame's height, when it
 * rises downwards (a > 0) and its residuals' RMS is at most 15 % of the mean height.
 */
void vtm_ground_add(vt_ground *g, const float box[4], int frame_h);

/* An object's ratio to the line from its given box; 0 when the line is not trusted or the box
 * stands above the horizon. */
double vtm_ground_ratio(const vt_ground *g, const float box[4]);

/*
 * The height of an object of ratio k whose box is centred at row cy: the h that solves
 * h = k a (cy + h / 2 - y0). 0 when the line is not trusted, k is 0, or there is no such h (the
 * centre above the horizon, or k a >= 1.5: a box that would grow faster than it moves down).
 */
double vtm_ground_height(const vt_ground *g, double k, double cy);

#endif
