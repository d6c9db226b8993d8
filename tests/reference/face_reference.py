"""Independent Python reference of the face pipeline (numpy + Pillow + onnxruntime), used by
tests/reference_parity.rs to check the Rust engine against it.

usage: face_reference.py detect MODELS_DIR image...      -> JSON {path: [{box, score, keypoints}]}
       face_reference.py embed  MODELS_DIR crop.png...   -> JSON {path: [192 floats]}  (MobileFaceNet)
       face_reference.py embed-sface MODELS_DIR crop.png... -> JSON {path: [128 floats]}  (SFace)
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

S = 192  # full-range detector input


def session(path):
    so = ort.SessionOptions()
    so.log_severity_level = 3
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def anchors():
    g = 48
    ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
    return np.stack([(xs.ravel() + 0.5) / g, (ys.ravel() + 0.5) / g], axis=1).astype(np.float32)


def letterbox(img):
    w, h = img.size
    scale = S / max(w, h)
    rw, rh = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((S, S, 3), np.float32) - 1.0
    px, py = (S - rw) // 2, (S - rh) // 2
    resized = np.asarray(img.resize((rw, rh), Image.BILINEAR), np.float32) / 127.5 - 1.0
    canvas[py:py + rh, px:px + rw] = resized
    return canvas.transpose(2, 0, 1)[None], scale, px, py


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(cands, thr=0.3):
    cands = sorted(cands, key=lambda c: -c[0])
    out = []
    while cands:
        top = cands[0]
        cluster = [c for c in cands if iou(top[1], c[1]) > thr or c is top]
        cands = [c for c in cands if not (iou(top[1], c[1]) > thr or c is top)]
        w = np.array([c[0] for c in cluster])
        w = w / w.sum()
        box = sum(wi * np.array(c[1]) for wi, c in zip(w, cluster))
        kps = sum(wi * np.array(c[2]) for wi, c in zip(w, cluster))
        out.append((top[0], box, kps))
    return out


def detect(models, paths):
    s = session(f"{models}/face_detection_full_range.onnx")
    names = [o.name for o in s.get_outputs()]
    anc = anchors()
    result = {}
    for p in paths:
        img = ImageOps.exif_transpose(Image.open(p)).convert("RGB")
        x, scale, px, py = letterbox(img)
        outs = dict(zip(names, s.run(None, {s.get_inputs()[0].name: x})))
        reg = next(v for k, v in outs.items() if v.shape[-1] == 16)[0]
        cls = next(v for k, v in outs.items() if v.shape[-1] == 1)[0, :, 0]
        score = 1 / (1 + np.exp(-np.clip(cls, -80, 80)))
        cands = []
        for i in np.nonzero(score >= 0.5)[0]:
            r, a = reg[i], anc[i]
            cx, cy, w, h = r[0] / S + a[0], r[1] / S + a[1], r[2] / S, r[3] / S
            to_img = lambda u, v: ((u * S - px) / scale, (v * S - py) / scale)
            x1, y1 = to_img(cx - w / 2, cy - h / 2)
            x2, y2 = to_img(cx + w / 2, cy + h / 2)
            kps = [to_img(r[4 + 2 * k] / S + a[0], r[5 + 2 * k] / S + a[1]) for k in range(6)]
            cands.append((float(score[i]), [x1, y1, x2, y2], kps))
        result[p] = [
            {"box": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])],
             "score": sc, "keypoints": np.asarray(k).tolist()}
            for sc, b, k in weighted_nms(cands)
        ]
    return result


def embed_with(model_file, normalise, models, paths):
    s = session(f"{models}/{model_file}")
    result = {}
    for p in paths:
        x = normalise(np.asarray(Image.open(p).convert("RGB"), np.float32))
        v = s.run(None, {s.get_inputs()[0].name: x.transpose(2, 0, 1)[None]})[0][0]
        result[p] = (v / np.linalg.norm(v)).tolist()
    return result


def embed(models, paths):
    # MobileFaceNet takes RGB scaled to about -1..1.
    return embed_with("mobilefacenet.onnx", lambda x: (x - 127.5) / 128.0, models, paths)


def embed_sface(models, paths):
    # SFace takes RGB 0..255 as it is: its graph scales the input itself (../shared/FIELD-NOTES.md).
    return embed_with("sface.onnx", lambda x: x, models, paths)


if __name__ == "__main__":
    mode, models, *paths = sys.argv[1:]
    print(json.dumps({"detect": detect, "embed": embed, "embed-sface": embed_sface}[mode](models, paths)))
