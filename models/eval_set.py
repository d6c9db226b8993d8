"""Builds the recognition evaluation set from the photos the registry packages ship (face_recognition's
and insightface's test images): one good photo per identity and photo as the "gallery" side, and
camera-like probes made from each — the face shrunk to 80, 56, 40 and 28 px, blurred, dimmed — with
pairs.csv listing every probe against every gallery photo (same person or not) and the probe's
condition. Deterministic: same inputs, same Pillow, same bytes.

usage: eval_set.py PHOTOS_DIR OUT_DIR
"""
import csv
import sys
from pathlib import Path

from PIL import Image, ImageFilter, ImageOps

# Identity, file, and the face's width in px as the engine's detector measures it in that photo.
PHOTOS = [
    ("obama", "obama.jpg", 284),
    ("obama", "obama2.jpg", 341),
    ("obama", "obama3.jpg", 307),
    ("obama", "obama_partial_face.jpg", 290),  # half the face cut off by the left edge
    ("obama", "obama_partial_face2.jpg", 297),
    ("biden", "biden.jpg", 317),
]
# The six people of insightface's t1.jpg, each cropped out around its face: (x, y, width).
T1_FACES = [(462, 289, 115), (52, 275, 116), (730, 363, 95), (868, 71, 134), (267, 167, 105), (1128, 295, 93)]
# insightface's Tom Hanks is an aligned 112 px crop: the face fills it, so no detector finds it as it
# is; on a canvas three times its size the face is ~100 px.
HANKS = ("tom_hanks", "Tom_Hanks_54745.png", 100)

SIZES = [80, 56, 40, 28]
BLURS = [1.5, 3.0]  # Gaussian radius at the 80 px size
DIM = 0.35


def scaled(img, face_w, target):
    k = target / face_w
    return img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.LANCZOS)


def save(img, path):
    img.convert("RGB").save(path, quality=95)


def main(photos, out):
    out.mkdir(parents=True, exist_ok=True)
    bases = []  # (identity, name, image, face width)
    for identity, file, face_w in PHOTOS:
        bases.append((identity, Path(file).stem, Image.open(photos / file).convert("RGB"), face_w))
    t1 = Image.open(photos / "t1.jpg").convert("RGB")
    for i, (x, y, w) in enumerate(T1_FACES):
        side = round(w * 2.4)
        cx, cy = x + w // 2, y + w // 2
        left, top = max(0, cx - side // 2), max(0, cy - side // 2)
        crop = t1.crop((left, top, min(t1.width, left + side), min(t1.height, top + side)))
        bases.append((f"t1_{chr(ord('a') + i)}", f"t1_{chr(ord('a') + i)}", crop, w))
    identity, file, face_w = HANKS
    hanks = Image.open(photos / file).convert("RGB")
    canvas = ImageOps.expand(hanks, border=hanks.width, fill=(128, 128, 128))
    bases.append((identity, Path(file).stem, canvas, face_w))

    gallery = []  # (identity, file)
    probes = []  # (identity, base name, file, condition)
    for identity, name, img, face_w in bases:
        g = f"{name}.jpg"
        save(img, out / g)
        gallery.append((identity, name, g))
        probes.append((identity, name, g, "original"))
        for size in SIZES:
            p = f"{name}-{size}px.jpg"
            save(scaled(img, face_w, size), out / p)
            probes.append((identity, name, p, f"{size}px"))
        at80 = scaled(img, face_w, 80)
        for r in BLURS:
            p = f"{name}-80px-blur{r}.jpg"
            save(at80.filter(ImageFilter.GaussianBlur(r)), out / p)
            probes.append((identity, name, p, f"80px blur {r}"))
        p = f"{name}-80px-dim.jpg"
        save(at80.point(lambda v: round(v * DIM)), out / p)
        probes.append((identity, name, p, f"80px dim {DIM}"))

    photos_of = {}
    for identity, name, _ in gallery:
        photos_of.setdefault(identity, []).append(name)
    with open(out / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["file_x", "file_y", "same", "condition"])
        for identity, base, probe, condition in probes:
            for g_identity, g_name, g_file in gallery:
                if g_identity == identity:
                    # Another photo of the same person when there is one (as a camera sees someone
                    # enrolled from another photo); the probe's own source only when there is not.
                    if g_name == base and len(photos_of[identity]) > 1:
                        continue
                    w.writerow([probe, g_file, "yes", condition])
                else:
                    w.writerow([probe, g_file, "no", condition])


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
