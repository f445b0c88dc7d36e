// Package toyworld is the procedural world LOBA's embedded base model is trained on and in which
// slider quality is measured: one shape per image, every attribute readable exactly from pixels.
//
// # World (world.go)
//
// A Scene has four attributes, each drawn uniformly by Sample:
//
//   - shape: circle, square (axis-aligned), triangle (upright isosceles, base = height);
//   - color: red (255,0,0), green (0,255,0), blue (0,0,255), yellow (255,255,0) — corners of the
//     RGB cube, ≥ 255 apart from each other and from both backgrounds;
//   - size: small, medium, large. Every shape of a size has the area of a circle of radius
//     4, 6.5, 9 px on the 32×32 reference canvas: 50.3, 132.7, 254.5 px (fractions 0.0491,
//     0.1296, 0.2485 of min(w, h)², see NominalArea), so size does not depend on shape;
//   - background: white, black.
//
// Position: the shape's bounding box is centred on the canvas with a uniform jitter of ±2 px
// (±Jitter = ±1/16 of the canvas) per axis; Scene.CX, CY store the shape's centroid as fractions of
// the width and height. A large shape stays ≥ 2.7 px from the edge of a 32×32 canvas.
//
// Shades: SampleShaded also mixes the shape's colour with one of the three other palette colours
// by a uniform fraction up to maxShade ≤ MaxShade = 0.25 (Scene.Shade, ShadeToward); the caption
// still names the colour, and every read-out keeps the class. The base's last stage is trained on
// shaded scenes, so that it draws a colour's shades, not only its corner, and a colour slider can
// grade its colour instead of flipping between corners.
//
// Render(s, w, h) draws a scene at any size (sizes and jitter scale with min(w, h)/32): a pixel
// takes the palette colour when its centre lies in the shape, with hard edges and no
// anti-aliasing. Rendered images are not constant on 2×2 blocks; the latent map averages each block,
// so the model sees (and generates) BlockAverage(Render(...)), with mixed edge blocks. Read handles
// both.
//
// # Captions (caption.go)
//
// FullCaption is canonical: "a large red circle on a white background"; Prompt builds canonical
// prompts with attributes left open ("a red shape", "a large circle", "a circle on a black
// background"). Caption varies the wording: each attribute is omitted with probability 0.2
// (OmitProbability; a missing shape becomes "shape"/"object"), synonyms (large/big/huge,
// small/tiny/little, medium/medium-sized/mid-sized, circle/disc, square/box), articles
// (a/one/the/none), templates ("red circle, white background", "a circle that is large and red",
// "a big circle in red", "an image of …", "a white background with …") and background phrases
// ("on a white background", "on white", ", white background", "against a white background",
// "on a white backdrop"). Captions have ≤ 15 words (far below CLIP's 75 tokens); Vocabulary lists
// the 39 words, and Parse maps any prompt's words to the classes they name.
//
// # Read-outs (readout.go)
//
// Read(img) works on any RGB image (ReadCHW on float32 [3, H, W] in [−1, 1], ReadBatch on
// [B, 3, H, W]):
//
//   - Background: the outermost pixel ring's mean b, snapped to the nearest background colour.
//   - Color: f = mean of the core (pixels at ≥ 0.7 of the largest distance from b); the class is the
//     palette colour c whose segment b→c passes nearest f (so washed-out colours keep their class).
//   - Area: Σ weights/(w·h), weight = ⟨p−b, f−b⟩/|f−b|² clamped to [0, 1] and zeroed at ≤ 0.2.
//     It is unchanged by 2×2 averaging and nearly unbiased under noise.
//   - Size: area/min(w, h)² against the thresholds halfway between the nominal areas,
//     0.0894 and 0.1891 (SizeThresholds; the same for every shape).
//   - Shape: the template (same area and centroid, 4×4 subsamples per pixel, sharp or blurred by a
//     3×3 box, whichever fits better) nearest in L2 to the weights, both 2×2 block-averaged when w
//     and h are even. This holds where the bounding-box fill ratio fails: at the latent resolution
//     a small circle's fill ratio ranges 0.5…1.4.
//   - CX, CY: the weighted centroid; Hue: the chroma-weighted circular mean hue in [−60, 300)
//     degrees (red 0, yellow 60, green 120, blue 240); RGB: f.
//   - BgLuminance (tone.go): the mean Rec. 709 luma 0.2126 R + 0.7152 G + 0.0722 B (on the stored
//     values, not linearised) of the pixels whose weight is 0; of every pixel when there is no
//     shape. White 1, black 0.
//   - Cast (tone.go): mean(B) − mean(R) over every pixel, in [−1, 1]; 0 for a plain white, grey or
//     black image, higher when the image is tinted blue or cyan, lower when tinted red or yellow.
//
// Over 1000 random 32×32 scenes the read-out is 100% right on shape, colour, size and background,
// with the centroid within 0.64 px, for clean, block-averaged, noisy (σ = 0.05 in [0, 1] units),
// block-averaged noisy and block-averaged 3×3-blurred images (TestReadAccuracy logs the numbers).
// Readout.Confident flags read-outs that fit their classes well (all of those images pass).
//
// # Region masks (region.go)
//
// RegionMask(prompt, "foreground" | "background", w, h) is the exact mask of the pixels some scene
// matching the prompt can paint as its shape (open shape and size: every class), over the whole
// jitter range: the Minkowski sum of each shape with the rectangle of centres, tested at pixel
// centres as Render does. "background" is its complement. On a 32×32 canvas "a small circle" covers
// 132 px, "a large circle" 416 px and "a shape" 540 px of 1024. For the latent grid, compute the
// mask at the image size and area-average it.
//
// # Latent map (latent.go)
//
// The fixed map that stands in for the VAE: 4 latent channels at 2× down-sampling. Encode
// averages each 2×2 block to rgb in [−1, 1] and returns z = S·M·rgb with
//
//	M = ½ [[1, 1, 1], [1, −1, 1], [1, 1, −1], [1, −1, −1]]   (ColorMap, 4×3)
//
// the first three columns of the 4×4 Sylvester–Hadamard matrix over 2: orthonormal columns,
// MᵀM = I₃ exactly, and S = diag(ChannelScale) = diag(0.7192, 1.7977, 1.6445, 1.7983), 1/std of each
// unscaled channel over 8192 images. Decode returns rgb = Mᵀ·S⁻¹·z, up-sampled 2× (nearest) and clamped to
// [−1, 1]; Decode(Encode(x)) = x to float32 rounding (1.2e-7) for images constant on 2×2 blocks.
// EncodeGraph and DecodeGraph do the same on *graph.Node (NCHW, forward only).
//
// # Data (dataset.go)
//
// Batch(rng, n, w, h) returns float32 images [n, 3, h, w] in [−1, 1], their captions and scenes,
// deterministic for a seeded rng; BatchImages returns *image.RGBA instead; Grid tiles images for
// viewing.
package toyworld
