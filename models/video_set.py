"""Builds the labelled clip set for `panoptes eval video` from the photos the registry packages ship:
registry photos animated across a panning, noisy scene the way setup.sh animates the walk-through demo
clip (a face-less crop of obama2.jpg as the background), at 10 fps, 1280x720, encoded like a camera
(H.264 Main profile with B-frames, ~1.5 Mbit/s, in MP4 so the clip carries its own rate).

Each clip gets <clip>.truth.csv: name,start_s,end_s — when a person is in view with the whole face
inside the picture (`stranger` for people nobody enrolled). enrol.csv names the enrolment stills
(copied into enrol/). Where the registry has another photo of a person, the clip animates a different
photo from the one enrolled (Obama: enrolled from obama.jpg, seen as obama2.jpg and obama3.jpg); Biden
and Tom Hanks have one photo each, so the clip shows that same photo, but turned, scaled, blurred or
dimmed.

The frames are deterministic (a seeded numpy generator, Pillow resampling); the encoded bytes depend on
the x264 version, so the set is not listed in SHA256SUMS.

usage: video_set.py PHOTOS_DIR OUT_DIR
"""
import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

W, H, FPS = 1280, 720, 10

# Face centre (x, y) and width in px in each photo (widths as the engine's detector measures them,
# see eval_set.py; centres read off the photos).
FACES = {
    "obama2": ("obama2.jpg", (362, 375), 341),
    "obama3": ("obama3.jpg", (763, 389), 307),
    "biden": ("biden.jpg", (560, 321), 317),
}
# The six people of insightface's t1.jpg: (x, y, width) of each face (as in eval_set.py).
T1_FACES = [(462, 289, 115), (52, 275, 116), (730, 363, 95), (868, 71, 134), (267, 167, 105), (1128, 295, 93)]
ENROL = [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("tom_hanks", "Tom_Hanks_54745.png")]


class Card:
    """A person cut out of a photo: a square around the face, the face `face_w` px wide in it."""

    def __init__(self, img, face_w):
        self.img, self.face_w = img, face_w


def card_from(photo, centre, face_w, side_k=2.4):
    side = round(face_w * side_k)
    cx, cy = centre
    left, top = cx - side // 2, cy - side // 2
    crop = photo.crop((left, top, left + side, top + side))  # outside the photo: black, cut by the mask
    return Card(crop, face_w)


def cards(photos):
    out = {}
    for name, (file, centre, face_w) in FACES.items():
        out[name] = card_from(Image.open(photos / file).convert("RGB"), centre, face_w)
    # Tom Hanks is an aligned 112 px crop (face ~100 px): on a grey margin so the head has room.
    hanks = Image.open(photos / "Tom_Hanks_54745.png").convert("RGB")
    out["tom_hanks"] = Card(ImageOps.expand(hanks, border=70, fill=(120, 120, 120)), 100)
    t1 = Image.open(photos / "t1.jpg").convert("RGB")
    for i, (x, y, w) in enumerate(T1_FACES):
        out[f"t1_{i}"] = card_from(t1, (x + w // 2, y + w // 2), w)
    return out


def background(photos):
    """A face-less crop of obama2.jpg (its lower left third), larger than the frame so it can pan."""
    bg = Image.open(photos / "obama2.jpg").convert("RGB")
    bg = bg.crop((0, bg.height * 2 // 3, bg.width // 3, bg.height))
    return bg.resize((1400, 800), Image.BILINEAR)


def panned(bg, t):
    x = round(60 + 60 * math.sin(2 * math.pi * t / 10))
    y = round(40 + 30 * math.sin(2 * math.pi * t / 7))
    return bg.crop((x, y, x + W, y + H))


def perspective_coeffs(dst, src):
    """PIL PERSPECTIVE coefficients mapping output points `dst` to input points `src`."""
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    b = [c for p in src for c in p]
    return np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64)).tolist()


def turned(img, yaw_deg, roll_deg):
    """The card seen turned: yaw as a perspective squeeze (the far side narrower and shorter), roll as
    a rotation in the picture plane."""
    w, h = img.size
    if abs(yaw_deg) > 0.5:
        th = math.radians(abs(yaw_deg))
        nw = w * math.cos(th)
        far = h * 0.28 * math.sin(th)  # how much shorter the far edge is, split top and bottom
        x0 = (w - nw) / 2
        if yaw_deg > 0:  # right side turns away
            dst = [(x0, 0), (x0 + nw, far / 2), (x0 + nw, h - far / 2), (x0, h)]
        else:
            dst = [(x0, far / 2), (x0 + nw, 0), (x0 + nw, h), (x0, h - far / 2)]
        src = [(0, 0), (w, 0), (w, h), (0, h)]
        img = img.transform((w, h), Image.PERSPECTIVE, perspective_coeffs(dst, src), Image.BICUBIC)
    if abs(roll_deg) > 0.5:
        img = img.rotate(roll_deg, Image.BICUBIC)
    return img


def motion_blurred(img, length):
    a = np.asarray(img, dtype=np.float32)
    n = max(1, int(length))
    acc = np.zeros_like(a)
    for dx in range(n):
        acc += np.roll(a, dx - n // 2, axis=1)
    return Image.fromarray(np.clip(acc / n, 0, 255).astype(np.uint8))


class Sprite:
    """One person on screen at one frame: card, face width on screen, centre of the face on screen and
    the effects on the card."""

    def __init__(self, who, truth, card, face_px, cx, cy, yaw=0.0, roll=0.0, blur=0.0, motion=0, z=0):
        self.who, self.truth, self.card, self.face_px = who, truth, card, face_px
        self.cx, self.cy, self.yaw, self.roll, self.blur, self.motion, self.z = cx, cy, yaw, roll, blur, motion, z


def paste(frame, s):
    k = s.face_px / s.card.face_w
    side = max(8, round(s.card.img.width * k))
    img = s.card.img.resize((side, side), Image.LANCZOS)
    # A soft oval: a head and shoulders, not a rectangle; turned with the face.
    mask = Image.new("L", (side, side), 0)
    ImageDraw.Draw(mask).ellipse((side * 0.06, side * 0.02, side * 0.94, side * 1.2), fill=255)
    mask = turned(mask.filter(ImageFilter.GaussianBlur(side / 40)), s.yaw, s.roll)
    img = turned(img, s.yaw, s.roll)
    if s.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(s.blur))
    if s.motion > 1:
        img = motion_blurred(img, s.motion)
    frame.paste(img, (round(s.cx - side / 2), round(s.cy - side / 2)), mask)


def face_in_view(s):
    half = s.face_px / 2
    return s.cx - half >= 0 and s.cx + half <= W and s.cy - half >= 0 and s.cy + half <= H


def lerp(a, b, u):
    u = min(1.0, max(0.0, u))
    return a + (b - a) * u


def ramp(t, t0, t1):
    return (t - t0) / (t1 - t0)


# ---- the clips: each a function of time giving the sprites on screen ------------------------------

# Seconds with nobody in view between two people of one clip: so the second is a new track, not the
# first one's continued (the tracker holds a lost face a moment).
GAP = 1.5


def turns(c, t):
    """Obama (obama3.jpg) then Biden, each turning the head left and right up to 60° and rolling it,
    frontal in between, while drifting slowly across."""
    out = []
    for who, truth, t0 in (("obama3", "obama", 0.0), ("biden", "biden", 6.0 + GAP)):
        u = t - t0
        if 0 <= u < 6:
            # 0-0.8 s frontal, yaw +20..+60..0, frontal, yaw -20..-60..0, roll ±25°.
            yaw = 60 * math.sin(math.pi * (u - 0.8) / 1.6) if 0.8 <= u < 2.4 else 0.0
            yaw = -60 * math.sin(math.pi * (u - 3.0) / 1.6) if 3.0 <= u < 4.6 else yaw
            roll = 25 * math.sin(2 * math.pi * (u - 4.8) / 1.2) if 4.8 <= u < 6.0 else 0.0
            out.append(Sprite(who, truth, c[who], 120, lerp(300, 980, u / 6), 330, yaw=yaw, roll=roll))
    return out


def scale(c, t):
    """Obama (obama2.jpg) walking nearer: face 25 px growing to 200 px; then Tom Hanks going away:
    200 px shrinking to 25 px."""
    out = []
    if t < 6:
        px = 25 * (8 ** (t / 5.5)) if t < 5.5 else 200
        out.append(Sprite("obama2", "obama", c["obama2"], min(px, 200), lerp(420, 640, t / 6), lerp(300, 360, t / 6)))
    elif 6 + GAP <= t < 12 + GAP:
        u = t - 6 - GAP
        px = 200 / (8 ** (min(u, 5.5) / 5.5))
        out.append(Sprite("tom_hanks", "tom_hanks", c["tom_hanks"], px, lerp(900, 1060, u / 6), lerp(380, 300, u / 6)))
    return out


def blur(c, t):
    """Obama (obama2.jpg) going out of focus (Gaussian radius 0 → 4 px at a 90 px face), then Biden
    walking fast enough to smear (motion blur 4 → 14 px)."""
    out = []
    if t < 6:
        out.append(Sprite("obama2", "obama", c["obama2"], 90, lerp(350, 900, t / 6), 320, blur=lerp(0, 4, t / 5)))
    elif 6 + GAP <= t < 12 + GAP:
        u = t - 6 - GAP
        out.append(Sprite("biden", "biden", c["biden"], 100, lerp(1000, 250, u / 6), 340, motion=round(lerp(4, 14, u / 5))))
    return out


def dim(c, t):
    """Dusk: the whole scene darkened (gamma 1.6, brightness × 0.35) with more sensor noise, while
    Obama (obama3.jpg) and then Tom Hanks cross."""
    out = []
    if t < 5:
        out.append(Sprite("obama3", "obama", c["obama3"], 110, lerp(250, 1000, t / 5), 330))
    elif 5 + GAP <= t < 10 + GAP:
        u = t - 5 - GAP
        out.append(Sprite("tom_hanks", "tom_hanks", c["tom_hanks"], 110, lerp(1030, 250, u / 5), 350))
    return out


def crossing(c, t):
    """Obama (obama2.jpg) walks right from the left, Biden left from the right, nearer the camera:
    for about a second Biden hides Obama's face."""
    return [
        Sprite("obama2", "obama", c["obama2"], 100, lerp(-120, 1400, t / 12), 320, z=0),
        Sprite("biden", "biden", c["biden"], 120, lerp(1400, -120, t / 12), 330, z=1),
    ]


def strangers(c, t):
    """Nobody enrolled: the six people of t1.jpg pass two at a time, then three group photos (several
    small faces each) drift across."""
    out = []
    for i in range(6):
        t0 = (i // 2) * 2.5 + (i % 2) * 0.6
        u = t - t0
        if 0 <= u < 3.5:
            going_right = i % 2 == 0
            x = lerp(-100, 1380, u / 3.5) if going_right else lerp(1380, -100, u / 3.5)
            out.append(Sprite(f"t1_{i}", "stranger", c[f"t1_{i}"], 95 + 10 * (i % 3), x, 260 + 140 * (i % 2)))
    return out


GROUPS = [("faceapi-sample1.jpg", 8.0), ("faceapi-sample3.jpg", 10.5), ("faceapi-sample5.jpg", 13.0)]


def groups_on(frame, groups, t, in_view):
    """Group photos sliding in from the right (in strangers only); marks which are fully in view."""
    for i, (img, t0) in enumerate(groups):
        u = t - t0
        if 0 <= u < 4:
            x = round(lerp(W, -img.width, u / 4))
            frame.paste(img, (x, 120))
            in_view[f"group{i}"] = 0 <= x and x + img.width <= W


CLIPS = [
    ("turns", 12.0 + GAP, turns),
    ("scale", 12.0 + GAP, scale),
    ("blur", 12.0 + GAP, blur),
    ("dim", 10.0 + GAP, dim),
    ("crossing", 12.0, crossing),
    ("strangers", 17.0, strangers),
]


def render(name, seconds, fn, c, bg, photos, out):
    rng = np.random.default_rng(sum(map(ord, name)))
    groups = []
    if name == "strangers":
        for file, t0 in GROUPS:
            g = Image.open(photos / file).convert("RGB")
            groups.append((g.resize((560, round(g.height * 560 / g.width)), Image.LANCZOS), t0))
    n = round(seconds * FPS)
    visible = {}  # key -> (truth name, [frames in view])
    enc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(FPS),
         "-i", "-", "-c:v", "libx264", "-profile:v", "main", "-bf", "2", "-g", "20", "-b:v", "1500k",
         "-maxrate", "2000k", "-bufsize", "2000k", "-pix_fmt", "yuv420p", "-threads", "2",
         str(out / f"{name}.mp4")],
        stdin=subprocess.PIPE,
    )
    for i in range(n):
        t = i / FPS
        frame = panned(bg, t).copy()
        in_view = {}
        groups_on(frame, groups, t, in_view)
        for s in sorted(fn(c, t), key=lambda s: s.z):
            paste(frame, s)
            in_view[s.who] = face_in_view(s)
        for key, seen in in_view.items():
            truth = "stranger" if key.startswith("group") else next(s.truth for s in fn(c, t) if s.who == key)
            visible.setdefault(key, (truth, []))
            if seen:
                visible[key][1].append(i)
        a = np.asarray(frame, dtype=np.float32)
        sigma = 4.0
        if name == "dim":
            a = 255 * (a / 255) ** 1.6 * 0.35
            sigma = 6.0
        a = a + rng.normal(0, sigma, a.shape)
        enc.stdin.write(np.clip(a, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        raise SystemExit(f"ffmpeg failed on {name}")
    with open(out / f"{name}.truth.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "start_s", "end_s"])
        rows = []
        for truth, frames in visible.values():
            if frames:
                rows.append((frames[0] / FPS, (frames[-1] + 1) / FPS, truth))
        for start, end, truth in sorted(rows):
            w.writerow([truth, f"{start:.1f}", f"{end:.1f}"])
    return n


def write_enrol(photos, out):
    (out / "enrol").mkdir(parents=True, exist_ok=True)
    with open(out / "enrol.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["name", "photo"])
        for name, file in ENROL:
            src = Image.open(photos / file).convert("RGB")
            if name == "tom_hanks":
                # The aligned crop fills its frame: no detector finds the face as it is (eval_set.py).
                # Twice the size on a half-width margin the detector is sure enough of to enroll it
                # (score ≥ enrollment.min_score; on eval_set.py's 3× canvas it scores 0.74).
                src = src.resize((src.width * 2, src.height * 2), Image.LANCZOS)
                src = ImageOps.expand(src, border=src.width // 2, fill=(128, 128, 128))
            dest = f"enrol/{name}.jpg"
            src.save(out / dest, quality=95)
            w.writerow([name, dest])


def main(photos, out):
    out.mkdir(parents=True, exist_ok=True)
    write_enrol(photos, out)
    c, bg = cards(photos), background(photos)
    total = 0
    for name, seconds, fn in CLIPS:
        total += render(name, seconds, fn, c, bg, photos, out)
    print(f"video set: {len(CLIPS)} clips, {total} frames at {FPS} fps in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
