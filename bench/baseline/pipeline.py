"""The reference pipeline Panoptes is compared with: one camera per process, the way the Python
scripts our users run today work (OpenCV decode + onnxruntime), with the same models, the same
pre/post-processing and the same thresholds as the engine (docs and ../../engine/src/detect, align,
embed), written as a careful Python programmer would: numpy vectorised, OpenCV for resizing and
warping, one onnxruntime session per model, no per-frame allocations it could avoid.

It plays an Annex-B H.264 clip in real time and in a loop (as a camera would deliver it), decodes
every frame, analyses `--analysis-fps` of them (detect with BlazeFace full range, refine with the
468-point mesh, align to the ArcFace template, embed with MobileFaceNet, match against a gallery
enrolled from --enroll photos), and prints one JSON line of figures at the end.
"""

import argparse
import json
import os
import resource
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)
DET_SIDE, MESH_SIDE, EMB_SIDE = 192, 192, 112
SCORE_THRESHOLD, NMS_IOU, MATCH_THRESHOLD = 0.5, 0.3, 0.55
# Anchors of the full-range detector: a 48×48 grid, one anchor per cell, centres at cell middles.
_g = (np.arange(48, dtype=np.float32) + 0.5) / 48.0
ANCHORS = np.stack(np.meshgrid(_g, _g), axis=-1).reshape(-1, 2)  # (x, y), row-major: y then x


class Models:
    def __init__(self, models_dir, threads):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        # Spinning threads burn a core between frames; off, as in the engine.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        load = lambda name: ort.InferenceSession(
            os.path.join(models_dir, name), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self.det = load("face_detection_full_range.onnx")
        self.mesh = load("face_landmark.onnx")
        self.emb = load("mobilefacenet.onnx")
        self.det_in = self.det.get_inputs()[0].name
        self.mesh_in = self.mesh.get_inputs()[0].name
        self.emb_in = self.emb.get_inputs()[0].name

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        scale = DET_SIDE / max(w, h)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (DET_SIDE - sw) // 2, (DET_SIDE - sh) // 2
        canvas = np.full((DET_SIDE, DET_SIDE, 3), -1.0, dtype=np.float32)
        canvas[py : py + sh, px : px + sw] = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_LINEAR) / 127.5 - 1.0
        outs = self.det.run(None, {self.det_in: canvas.transpose(2, 0, 1)[None]})
        reg, logit = (outs[0], outs[1]) if outs[0].shape[-1] == 16 else (outs[1], outs[0])
        reg, logit = reg[0], logit[0, :, 0]
        score = 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80)))
        keep = score >= SCORE_THRESHOLD
        if not keep.any():
            return []
        reg, score, anchors = reg[keep] / DET_SIDE, score[keep], ANCHORS[keep]
        cx, cy = reg[:, 0] + anchors[:, 0], reg[:, 1] + anchors[:, 1]
        bw, bh = reg[:, 2], reg[:, 3]
        kps = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        to_img = lambda v, pad: (v * DET_SIDE - pad) / scale
        boxes = np.stack([to_img(cx - bw / 2, px), to_img(cy - bh / 2, py), to_img(cx + bw / 2, px), to_img(cy + bh / 2, py)], 1)
        kps = np.stack([to_img(kps[..., 0], px), to_img(kps[..., 1], py)], -1)
        return weighted_nms(boxes, score, kps)

    def mesh_points(self, rgb, box, kps):
        """Five alignment points from the mesh (eye centres, nose tip, mouth corners), or None."""
        (l, r) = kps[0], kps[1]
        angle = np.arctan2(r[1] - l[1], r[0] - l[0])
        size = max(box[2] - box[0], box[3] - box[1]) * 1.5
        if not np.isfinite(size) or size <= 1:
            return None
        c = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
        s = size / MESH_SIDE
        cos, sin = np.cos(angle) * s, np.sin(angle) * s
        rot = np.array([[cos, -sin], [sin, cos]])
        t = c + rot @ np.array([-MESH_SIDE / 2, -MESH_SIDE / 2])
        crop_to_img = np.hstack([rot, t[:, None]])
        crop = cv2.warpAffine(rgb, crop_to_img, (MESH_SIDE, MESH_SIDE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        x = (crop.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
        outs = self.mesh.run(None, {self.mesh_in: x})
        mesh = next(o for o in outs if o.size == 1404).reshape(468, 3)[:, :2]
        logit = float(next(o for o in outs if o.size == 1).ravel()[0])
        if 1.0 / (1.0 + np.exp(-np.clip(logit, -80, 80))) < 0.5:
            return None
        pts = mesh @ crop_to_img[:, :2].T + crop_to_img[:, 2]
        return np.array(
            [(pts[33] + pts[133]) / 2, (pts[362] + pts[263]) / 2, pts[1], pts[61], pts[291]], dtype=np.float32
        )

    def embed(self, rgb, points):
        m, _ = cv2.estimateAffinePartial2D(points, TEMPLATE, method=cv2.LMEDS)
        if m is None:
            return None
        face = cv2.warpAffine(rgb, m, (EMB_SIDE, EMB_SIDE), flags=cv2.INTER_LINEAR)
        x = ((face.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        v = self.emb.run(None, {self.emb_in: x})[0][0]
        return v / (np.linalg.norm(v) + 1e-12)

    def analyse(self, rgb):
        out = []
        for box, score, kps in self.detect(rgb):
            points = self.mesh_points(rgb, box, kps)
            if points is None:
                points = np.array([kps[0], kps[1], kps[2], kps[3] - [8, 0], kps[3] + [8, 0]], dtype=np.float32)
            v = self.embed(rgb, points)
            if v is not None:
                out.append((box, score, v))
        return out


def weighted_nms(boxes, scores, kps):
    order = np.argsort(-scores)
    boxes, scores, kps = boxes[order], scores[order], kps[order]
    out, alive = [], np.ones(len(scores), dtype=bool)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in range(len(scores)):
        if not alive[i]:
            continue
        xx1 = np.maximum(boxes[i, 0], boxes[:, 0]); yy1 = np.maximum(boxes[i, 1], boxes[:, 1])
        xx2 = np.minimum(boxes[i, 2], boxes[:, 2]); yy2 = np.minimum(boxes[i, 3], boxes[:, 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        iou = inter / (area[i] + area - inter + 1e-9)
        cluster = alive & ((iou > NMS_IOU) | (np.arange(len(scores)) == i))
        w = scores[cluster] / scores[cluster].sum()
        out.append(((boxes[cluster] * w[:, None]).sum(0), scores[i], (kps[cluster] * w[:, None, None]).sum(0)))
        alive &= ~cluster
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--video", required=True)
    ap.add_argument("--models", default="models/onnx")
    ap.add_argument("--enroll", nargs="*", default=[], help="photos of people to match (one face each)")
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--analysis-fps", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    a = ap.parse_args()
    cv2.setNumThreads(1)
    ort.set_default_logger_severity(3)  # not the models' unused-initializer warnings

    models = Models(a.models, a.threads)
    gallery = []
    for path in a.enroll:
        img = cv2.imread(path)
        faces = models.analyse(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)) if img is not None else []
        if len(faces) == 1:
            gallery.append((os.path.basename(path), faces[0][2]))
    names = [g[0] for g in gallery]
    matrix = np.stack([g[1] for g in gallery]) if gallery else np.zeros((0, 192), dtype=np.float32)

    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage0.ru_utime + usage0.ru_stime
    start = time.perf_counter()
    cap = cv2.VideoCapture(a.video)
    period, every = 1.0 / a.fps, max(1, round(a.fps / a.analysis_fps))
    n = decoded = analysed = faces = matches = 0
    latencies = []
    while time.perf_counter() - start < a.seconds:
        due = start + n * period  # when a live camera would have delivered this frame
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        ok, bgr = cap.read()
        if not ok:  # loop the clip
            cap.release()
            cap = cv2.VideoCapture(a.video)
            ok, bgr = cap.read()
            if not ok:
                sys.exit(f"cannot decode {a.video}")
        decoded += 1
        if n % every == 0:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            found = models.analyse(rgb)
            analysed += 1
            faces += len(found)
            for _, _, v in found:
                if len(names) and float((matrix @ v).max()) >= MATCH_THRESHOLD:
                    matches += 1
            if found:
                latencies.append(time.perf_counter() - due)
        n += 1
    elapsed = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else 0.0
    print(
        json.dumps(
            {
                "elapsed_s": elapsed,
                "decoded": decoded,
                "analysed": analysed,
                "faces": faces,
                "matches": matches,
                "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
                "peak_rss_mb": usage.ru_maxrss / 1024,
                "latency_p50_ms": p(0.50),
                "latency_p95_ms": p(0.95),
                "gallery": names,
            }
        )
    )


if __name__ == "__main__":
    main()
