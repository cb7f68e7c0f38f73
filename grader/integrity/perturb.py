"""The perturbation family: changes of an image that a genuine CNN mostly survives and that a table of images
cannot foresee, because every parameter is drawn per image from a generator seeded by the submission's secret key.

Each perturbed copy is a composition: a crop of 80-95% of the image rescaled to 32 x 32 with a small rotation
and a mirror half of the time (one bilinear resampling), colour jitter (brightness, contrast, saturation), then
either JPEG compression at a random quality or Gaussian noise. numpy alone, on the host, all images at once: the
JPEG is its lossy part (YCbCr, 4:2:0 chroma, 8 x 8 DCT quantised with the standard tables scaled by quality;
the entropy coding it leaves out loses nothing). The sandbox only ever sees the resulting uint8 images.
"""

from __future__ import annotations

import numpy as np

# The strengths, chosen with `make bench-integrity` so that honest models lose about as much on test images
# as on training images (benchmarks/integrity.py prints both).
CROP = (0.80, 0.95)  # side of the crop, as a share of the image's side
ROTATION_DEGREES = 10.0  # at most, either way
BRIGHTNESS = 20.0  # grey levels, either way
CONTRAST = (0.8, 1.2)
SATURATION = (0.7, 1.3)
JPEG_SHARE = 0.3  # of the images go through JPEG; the others get the noise
JPEG_QUALITY = (40, 85)
NOISE_SIGMA = (2.0, 6.0)  # grey levels

FAMILY = ("crop-rescale", "rotation", "mirror", "colour-jitter", "jpeg", "noise")


def perturb(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, 32, 32, 3] -> uint8 [N, 32, 32, 3], each image changed by its own draw from the family."""
    if not len(images):
        return images.copy()
    jittered = _colour_jitter(_crop_rotate_mirror(images, rng), rng)
    through_jpeg = rng.random(len(images)) < JPEG_SHARE
    qualities = rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1, len(images))
    sigma = _per_image(rng, NOISE_SIGMA, images) * ~through_jpeg[:, None, None, None]
    out = np.clip(jittered + rng.standard_normal(jittered.shape, dtype=np.float32) * sigma, 0, 255)
    if through_jpeg.any():
        out[through_jpeg] = np.clip(_jpeg_lossy_part(out[through_jpeg], qualities[through_jpeg]), 0, 255)
    return np.rint(out).astype(np.uint8)


def _per_image(rng: np.random.Generator, bounds: tuple[float, float], images: np.ndarray) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], len(images)).astype(np.float32)[:, None, None, None]


def _crop_rotate_mirror(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One bilinear resampling per image: output pixel p reads the source at centre + scale * R(angle) * (p - mid),
    mirrored horizontally for half of the images; the crop's centre moves as far as the crop still fits."""
    count, size = len(images), images.shape[1]
    scale = rng.uniform(*CROP, count)
    angle = np.deg2rad(rng.uniform(-ROTATION_DEGREES, ROTATION_DEGREES, count))
    mirror = np.where(rng.random(count) < 0.5, -1.0, 1.0)
    mid = (size - 1) / 2
    room = (1 - scale) * size / 2
    centre_y = mid + rng.uniform(-1, 1, count) * room
    centre_x = mid + rng.uniform(-1, 1, count) * room
    grid = np.arange(size, dtype=np.float32) - mid
    ys, xs = np.meshgrid(grid, grid, indexing="ij")  # [size, size]
    xs = xs[None] * mirror[:, None, None]
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    s = scale[:, None, None]
    source_y = centre_y[:, None, None] + s * (cos * ys[None] + sin * xs)
    source_x = centre_x[:, None, None] + s * (-sin * ys[None] + cos * xs)
    return _bilinear(images, source_y, source_x)


def _bilinear(images: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """uint8 images [N, H, W, C] sampled at (y, x) [N, H, W], edges repeated. Coordinates stop just short of the
    last row and column, so that each pixel's four neighbours exist; gathers from the flat pixel list."""
    count, height, width, channels = images.shape
    y = np.clip(y, 0, height - 1.001).astype(np.float32)
    x = np.clip(x, 0, width - 1.001).astype(np.float32)
    top, left = y.astype(np.int32), x.astype(np.int32)  # floor: both are non-negative
    dy, dx = (y - top)[..., None], (x - left)[..., None]
    first = ((np.arange(count, dtype=np.int32)[:, None, None] * height + top) * width + left).ravel()
    pixels = images.reshape(-1, channels)

    def corner(offset: int) -> np.ndarray:
        return np.take(pixels, first + offset, axis=0).astype(np.float32).reshape(*top.shape, channels)

    upper_left, upper_right = corner(0), corner(1)
    upper = upper_left + (upper_right - upper_left) * dx
    lower_left, lower_right = corner(width), corner(width + 1)
    lower = lower_left + (lower_right - lower_left) * dx
    return upper + (lower - upper) * dy


def _colour_jitter(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    grey = images.mean(axis=3, keepdims=True)
    saturated = grey + (images - grey) * _per_image(rng, SATURATION, images)
    mean = saturated.mean(axis=(1, 2, 3), keepdims=True)
    contrasted = mean + (saturated - mean) * _per_image(rng, CONTRAST, images)
    return contrasted + _per_image(rng, (-BRIGHTNESS, BRIGHTNESS), images)


# The example tables of the JPEG standard (ITU T.81, Annex K), scaled by quality as libjpeg scales them.
LUMINANCE_TABLE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float32).reshape(8, 8)  # fmt: skip
CHROMINANCE_TABLE = np.full((8, 8), 99, dtype=np.float32)
CHROMINANCE_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
DCT = np.array(
    [[np.sqrt((1 if k == 0 else 2) / 8) * np.cos((2 * n + 1) * k * np.pi / 16) for n in range(8)] for k in range(8)],
    dtype=np.float32,
)  # orthonormal DCT-II: coefficients = DCT @ block @ DCT.T
DCT_2D = np.kron(DCT, DCT)  # the same on a block flattened to 64 values: one matrix product for every block


def _quality_tables(qualities: np.ndarray, table: np.ndarray) -> np.ndarray:
    scale = np.where(qualities < 50, 5000 / qualities, 200 - 2 * qualities).astype(np.float32)
    return np.clip(np.floor((table[None] * scale[:, None, None] + 50) / 100), 1, 255)  # [N, 8, 8]


def _quantise_blocks(plane: np.ndarray, tables: np.ndarray) -> np.ndarray:
    """plane [N, H, W] (H, W multiples of 8), each 8 x 8 block through DCT, quantisation and back."""
    count, height, width = plane.shape
    blocks = (plane - 128).reshape(count, height // 8, 8, width // 8, 8).transpose(0, 1, 3, 2, 4)
    flat = blocks.reshape(count, -1, 64)
    steps = tables.reshape(count, 1, 64)
    restored = (np.rint(flat @ DCT_2D.T / steps) * steps) @ DCT_2D
    shape = (count, height // 8, width // 8, 8, 8)
    return restored.reshape(shape).transpose(0, 1, 3, 2, 4).reshape(count, height, width) + 128


def _jpeg_lossy_part(images: np.ndarray, qualities: np.ndarray) -> np.ndarray:
    """float [N, 32, 32, 3] in 0..255 -> what a JPEG of each quality decodes to (4:2:0, nearest upsampling)."""
    red, green, blue = images[..., 0], images[..., 1], images[..., 2]
    luma = 0.299 * red + 0.587 * green + 0.114 * blue
    blue_diff = -0.168736 * red - 0.331264 * green + 0.5 * blue + 128
    red_diff = 0.5 * red - 0.418688 * green - 0.081312 * blue + 128
    count, height, width = luma.shape

    def subsampled(plane: np.ndarray) -> np.ndarray:
        halved = (plane[:, 0::2, 0::2] + plane[:, 0::2, 1::2] + plane[:, 1::2, 0::2] + plane[:, 1::2, 1::2]) / 4
        quantised = _quantise_blocks(halved, _quality_tables(qualities, CHROMINANCE_TABLE))
        return quantised.repeat(2, axis=1).repeat(2, axis=2)

    luma = _quantise_blocks(luma, _quality_tables(qualities, LUMINANCE_TABLE))
    blue_diff, red_diff = subsampled(blue_diff) - 128, subsampled(red_diff) - 128
    return np.stack(
        [luma + 1.402 * red_diff, luma - 0.344136 * blue_diff - 0.714136 * red_diff, luma + 1.772 * blue_diff],
        axis=-1,
    )
