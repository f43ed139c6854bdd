"""Tiny copies of each dataset in its exact published layout (file names, columns, conventions)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
from PIL import Image


def image(path: Path, size: tuple[int, int] = (12, 10), mode: str = "L") -> Path:
    """A tiny image of (width, height) `size` at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, 128 if mode == "L" else (120, 80, 40)).save(path)
    return path


def csv_gz(frame: pd.DataFrame, path: Path) -> None:
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, index=False)


MIMIC_LABELS = [
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
]  # fmt: skip

REPORT = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___F with cough

 COMPARISON:  None.

 FINDINGS:

 There is no focal consolidation.  Heart size is
 normal.

 IMPRESSION:

 No acute cardiopulmonary process.
"""
REPORT_IMPRESSION_ONLY = " FINAL REPORT\n INDICATION: fever\n\n IMPRESSION: Small left effusion.\n"
REPORT_NO_SECTIONS = " FINAL REPORT\n INDICATION: fever\n\n TECHNIQUE: PA view.\n"

# (subject, study, dicom, split, view, report or None, Rows, Columns)
MIMIC_IMAGES = [
    (10000032, 50414267, "d1", "train", "PA", REPORT, 30, 40),
    (10000032, 50414267, "d2", "train", "LATERAL", REPORT, 30, 40),
    (10000032, 53189527, "d3", "validate", "AP", REPORT_IMPRESSION_ONLY, 30, 40),
    (11000011, 51000001, "d4", "test", "PA", REPORT_NO_SECTIONS, 30, 40),
    (11000011, 51000002, "d5", "test", "AP", None, 30, 40),
    (12000012, 52000001, "d6", "train", "PA", REPORT, 60, 80),
]


def mimic(root: Path) -> Path:
    """MIMIC-CXR-JPG 2.0.0 (gzipped CSVs) with the MIMIC-CXR reports unpacked into the same root."""
    root.mkdir(parents=True, exist_ok=True)
    rows = [dict(dicom_id=d, study_id=t, subject_id=s, split=sp) for s, t, d, sp, *_ in MIMIC_IMAGES]
    csv_gz(pd.DataFrame(rows), root / "mimic-cxr-2.0.0-split.csv.gz")
    meta = [
        dict(dicom_id=d, subject_id=s, study_id=t, PerformedProcedureStepDescription="CHEST (PA AND LAT)",
             ViewPosition=v, Rows=r, Columns=c, StudyDate=21800506, StudyTime=213014.531,
             ProcedureCodeSequence_CodeMeaning="CHEST (PA AND LAT)", ViewCodeSequence_CodeMeaning="postero-anterior",
             PatientOrientationCodeSequence_CodeMeaning="Erect")  # fmt: skip
        for s, t, d, _, v, _, r, c in MIMIC_IMAGES
    ]
    csv_gz(pd.DataFrame(meta), root / "mimic-cxr-2.0.0-metadata.csv.gz")
    labels = []
    for s, t in dict.fromkeys((s, t) for s, t, *_ in MIMIC_IMAGES):
        row = {"subject_id": s, "study_id": t, **{c: None for c in MIMIC_LABELS}}
        if t == 50414267:
            row.update({"No Finding": 1.0, "Edema": -1.0})
        if t == 53189527:
            row.update({"Pleural Effusion": 1.0, "Cardiomegaly": 0.0})
        labels.append(row)
    labels = [r for r in labels if r["study_id"] != 52000001]  # a study without a label row
    csv_gz(pd.DataFrame(labels, columns=["subject_id", "study_id", *MIMIC_LABELS]), root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    for s, t, d, _, _, report, r, c in MIMIC_IMAGES:
        study = root / "files" / f"p{str(s)[:2]}" / f"p{s}" / f"s{t}"
        image(study / f"{d}.jpg", (c, r))
        if report is not None:
            (study.parent / f"s{t}.txt").write_text(report)
    return root


CHEXPERT_LABELS = [
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other",
    "Fracture", "Support Devices",
]  # fmt: skip


def chexpert(parent: Path, n_train: int = 6) -> Path:
    """CheXpert-v1.0-small: train.csv / valid.csv with Paths starting at the dataset folder's name."""
    root = parent / "CheXpert-v1.0-small"
    classes = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    for name, split, n in (("train.csv", "train", n_train), ("valid.csv", "valid", 2)):
        rows = []
        for i in range(n):
            for view, lateral in (("view1_frontal.jpg", False), ("view2_lateral.jpg", True)):
                if lateral and i % 2:
                    continue
                path = f"CheXpert-v1.0-small/{split}/patient{i:05d}/study1/{view}"
                image(parent / path)
                labels = {c: None for c in CHEXPERT_LABELS}
                labels[classes[i % 5]] = 1.0
                if i % 3 == 2:
                    labels["Edema" if classes[i % 5] != "Edema" else "Atelectasis"] = -1.0
                labels["Support Devices"] = 0.0
                rows.append({"Path": path, "Sex": ["Female", "Male"][i % 2], "Age": 60 + i,
                             "Frontal/Lateral": "Lateral" if lateral else "Frontal", "AP/PA": "" if lateral else "AP",
                             **labels})  # fmt: skip
        pd.DataFrame(rows).to_csv(root / name, index=False)
    return root


def egd_cxr(root: Path, fixations: list[tuple[str, float, float, float, int]]) -> Path:
    """EGD-CXR: master_sheet.csv and fixations.csv; `fixations` = (DICOM_ID, X_ORIGINAL, Y_ORIGINAL, FPOGD, FPOGV)."""
    root.mkdir(parents=True, exist_ok=True)
    dicoms = sorted({f[0] for f in fixations})
    pd.DataFrame({"dicom_id": dicoms, "path": [f"files/p10/p10000032/s50414267/{d}.dcm" for d in dicoms],
                  "study_id": 50414267, "patient_id": 10000032, "stay_id": 1, "gender": "F", "anchor_age": 50,
                  "image_top_pad": 0, "image_bottom_pad": 0, "image_left_pad": 0, "image_right_pad": 0,
                  "Normal": 1, "CHF": 0, "pneumonia": 0}).to_csv(root / "master_sheet.csv", index=False)  # fmt: skip
    rows = [
        {"DICOM_ID": d, "CASE_ID": 1, "Time (in secs)": 0.1 * i, "FPOGX": 0.5, "FPOGY": 0.5, "FPOGS": 0.1 * i,
         "FPOGD": dur, "FPOGID": i, "FPOGV": v, "BPOGX": 0.5, "BPOGY": 0.5, "BPOGV": 1, "X_ORIGINAL": x, "Y_ORIGINAL": y}
        for i, (d, x, y, dur, v) in enumerate(fixations)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "fixations.csv", index=False)
    return root


def reflacx(root: Path, readings: dict[str, tuple[str, int, int, bool, list[tuple[float, float, float, float]]]]) -> Path:
    """REFLACX: readings = {id: (dicom_id, image_size_x, image_size_y, discarded, [(start, end, x, y), ...])},
    split over two metadata phases."""
    main = root / "main_data"
    main.mkdir(parents=True, exist_ok=True)
    meta = []
    for i, (rid, (dicom, sx, sy, discarded, fix)) in enumerate(readings.items()):
        meta.append({"id": rid, "split": "train", "eye_tracking_data_discarded": discarded,
                     "image": f"physionet.org/files/mimic-cxr/2.0.0/files/p10/p10000032/s50414267/{dicom}.dcm",
                     "dicom_id": dicom, "subject_id": 10000032, "image_size_x": sx, "image_size_y": sy,
                     "Airway wall thickening": 0, "Atelectasis": 0, "phase": 1 + i % 2})  # fmt: skip
        (main / rid).mkdir()
        pd.DataFrame(
            [{"timestamp_start_fixation": s, "timestamp_end_fixation": e, "average_x_position": x, "average_y_position": y,
              "average_pupil_area_normalized": 1.0, "dispersion": 0.5, "xmin_shown_from_image": 0, "ymin_shown_from_image": 0,
              "xmax_shown_from_image": sx, "ymax_shown_from_image": sy, "window_level": 0.5, "window_width": 1.0}
             for s, e, x, y in fix]  # fmt: skip
        ).to_csv(main / rid / "fixations.csv", index=False)
    table = pd.DataFrame(meta)
    for phase, part in table.groupby("phase"):
        part.drop(columns="phase").to_csv(main / f"metadata_phase_{phase}.csv", index=False)
    return root


def rsna(root: Path) -> Path:
    """RSNA stage 2: stage_2_train_labels.csv (one row per box) and DICOM files (dummy bytes: never decoded here)."""
    rows = [
        ("a1", 264.0, 152.0, 213.0, 379.0, 1), ("a1", 562.0, 152.0, 256.0, 453.0, 1),  # two boxes, one image
        ("b2", None, None, None, None, 0), ("c3", None, None, None, None, 0), ("d4", 100.0, 100.0, 50.0, 50.0, 1),
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["patientId", "x", "y", "width", "height", "Target"]).to_csv(root / "stage_2_train_labels.csv", index=False)
    for pid in ("a1", "b2", "c3", "d4"):
        (root / "stage_2_train_images").mkdir(exist_ok=True)
        (root / "stage_2_train_images" / f"{pid}.dcm").write_bytes(b"\0" * 132 + b"DICM")
    return root


NIH_ROWS = [  # Image Index, Finding Labels, Patient ID, View Position
    ("00000001_000.png", "Cardiomegaly", 1, "PA"),
    ("00000001_001.png", "Cardiomegaly|Emphysema", 1, "PA"),
    ("00000002_000.png", "No Finding", 2, "AP"),
    ("00000003_000.png", "Hernia", 3, "PA"),
    ("00000004_000.png", "Effusion", 4, "PA"),
    ("00000005_000.png", "Pleural_Thickening", 5, "PA"),
    ("00000006_000.png", "Mass", 6, "PA"),
    ("00000007_000.png", "Not A Label", 7, "PA"),
]


def nih(root: Path) -> Path:
    """ChestX-ray14 (Kaggle layout: images_001/images/*.png), header exactly as in Data_Entry_2017.csv."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
             "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"]  # fmt: skip
    for i, (name, labels, pid, view) in enumerate(NIH_ROWS):
        lines.append(f"{name},{labels},{i},{pid},{50 + pid},{'MF'[pid % 2]},{view},2682,2749,0.143,0.143,")
        image(root / f"images_00{1 + i % 2}" / "images" / name)
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(r[0] for r in NIH_ROWS[:3] + NIH_ROWS[6:]) + "\n")
    (root / "test_list.txt").write_text("\n".join(r[0] for r in NIH_ROWS[3:6]) + "\n")
    return root


OPENI_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation>
   <meta type="rr"/>
   <uId id="CXR{n}"/>
   <MedlineCitation Owner="Indiana University" Status="supplied by publisher">
      <Article PubModel="Electronic">
         <Abstract>
            <AbstractText Label="COMPARISON">None.</AbstractText>
            <AbstractText Label="INDICATION">Positive TB test</AbstractText>
            <AbstractText Label="FINDINGS">{findings}</AbstractText>
            <AbstractText Label="IMPRESSION">{impression}</AbstractText>
         </Abstract>
      </Article>
   </MedlineCitation>
   <MeSH><major>normal</major></MeSH>
   {images}
</eCitation>
"""
# uid, findings, impression, [(image id suffix, projection)]
OPENI_REPORTS = [
    (1, "The cardiac silhouette and mediastinum size are within normal limits.", "Normal chest x-XXXX.",
     [("1_IM-0001-4001", "Frontal"), ("1_IM-0001-3001", "Lateral")]),
    (2, "", "No acute disease.", [("2_IM-0652-1001", "Frontal")]),
    (3, "", "", [("3_IM-1384-1001", "Frontal")]),
    (4, "Heart size normal.", "", [("4_IM-2050-1001-0001", "Frontal"), ("4_IM-2050-1001-0002", "Lateral")]),
]  # fmt: skip


def openi_xml_id(n: int, suffix: str) -> str:
    """The NLM XML form of a Kaggle file stem: ``CXR<stem>``, but report 1 repeats its uid (``CXR1_1_IM-...``)."""
    return f"CXR1_{suffix}" if n == 1 else f"CXR{suffix}"


def openi_xml(root: Path) -> Path:
    """NLM layout: ecgen-radiology/<n>.xml + NLMCXR_png/<parentImage id>.png (ids in the real forms)."""
    (root / "ecgen-radiology").mkdir(parents=True, exist_ok=True)
    for n, findings, impression, images in OPENI_REPORTS:
        parents = "\n".join(f'<parentImage id="{openi_xml_id(n, i)}"><figureId>F1</figureId><caption>Xray Chest PA and Lateral</caption></parentImage>'
                            for i, _ in images)  # fmt: skip
        text = OPENI_XML.format(n=n, findings=findings, impression=impression, images=parents)
        if not findings:
            text = text.replace('<AbstractText Label="FINDINGS"></AbstractText>', '<AbstractText Label="FINDINGS"/>')
        (root / "ecgen-radiology" / f"{n}.xml").write_text(text)
        for i, _ in images:
            image(root / "NLMCXR_png" / f"{openi_xml_id(n, i)}.png")
    return root


def openi_kaggle(root: Path) -> Path:
    """Kaggle layout: indiana_reports.csv, indiana_projections.csv, images/images_normalized/."""
    root.mkdir(parents=True, exist_ok=True)
    reports, projections = [], []
    for n, findings, impression, images in OPENI_REPORTS:
        reports.append({"uid": n, "MeSH": "normal", "Problems": "normal", "image": "Xray Chest PA and Lateral",
                        "indication": "Positive TB test", "comparison": "None.", "findings": findings or None,
                        "impression": impression or None})  # fmt: skip
        for i, projection in images:
            projections.append({"uid": n, "filename": f"{i}.dcm.png", "projection": projection})
            image(root / "images" / "images_normalized" / f"{i}.dcm.png")
    pd.DataFrame(reports).to_csv(root / "indiana_reports.csv", index=False)
    pd.DataFrame(projections).to_csv(root / "indiana_projections.csv", index=False)
    return root


def ham10000(root: Path) -> Path:
    rows = [
        ("HAM_0000118", "ISIC_0027419", "bkl", "histo", 80.0, "male", "scalp"),
        ("HAM_0000118", "ISIC_0025030", "bkl", "histo", 80.0, "male", "scalp"),
        ("HAM_0002730", "ISIC_0026769", "mel", "consensus", None, "female", "back"),
        ("HAM_0001466", "ISIC_0031633", "nv", "follow_up", 75.0, "unknown", "unknown"),
        ("HAM_0001999", "ISIC_0031634", "vasc", "confocal", 40.0, "male", "face"),
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"])
    frame.assign(dataset="vidir_modern").to_csv(root / "HAM10000_metadata.csv", index=False)
    for i, name in enumerate(frame["image_id"]):
        image(root / f"HAM10000_images_part_{1 + i % 2}" / f"{name}.jpg", mode="RGB")
    return root


def brset(root: Path) -> Path:
    rows = [
        ("img00001", 1, "Canon CR", 48.0, "diabetes1", 12.0, "yes", 2, 1, "yes", "Brazil", 0),
        ("img00002", 1, "Canon CR", 48.0, "diabetes1", 12.0, "yes", 2, 2, "yes", "Brazil", 1),
        ("img00003", 2, "NIKON NF5050", None, "0", None, "no", 1, 1, "no", "Brazil", 0),
    ]  # fmt: skip
    columns = ["image_id", "patient_id", "camera", "patient_age", "comorbidities", "diabetes_time_y", "insuline",
               "patient_sex", "exam_eye", "diabetes", "nationality", "diabetic_retinopathy"]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=columns).assign(optic_disc=1, vessels=1, macula=1, focus=1, quality="Adequate",
                                                       macular_edema=0, DR_ICDR=0, DR_SDRG=0)  # fmt: skip
    frame.to_csv(root / "labels.csv", index=False)
    for name in frame["image_id"]:
        image(root / "fundus_photos" / f"{name}.jpg", mode="RGB")
    return root


def mbrset(root: Path) -> Path:
    """labels_mbrset.csv (PhysioNet mBRSET 1.0 header) + images/<file>."""
    columns = ["patient", "age", "sex", "dm_time", "insulin", "insulin_time", "oraltreatment_dm", "systemic_hypertension",
               "insurance", "educational_level", "alcohol_consumption", "smoking", "obesity", "vascular_disease",
               "acute_myocardial_infarction", "nephropathy", "neuropathy", "diabetic_foot", "file", "laterality",
               "final_artifacts", "final_quality", "final_icdr", "final_edema"]  # fmt: skip
    rows = [
        (1, 61, 0, 10, "yes", 5, "yes", "yes", 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, "1.1.jpg", "right", "yes", "yes", 0, "no"),
        (1, 61, 0, 10, "yes", 5, "yes", "yes", 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, "1.2.jpg", "left", "yes", "yes", 2, "no"),
        (2, None, 1, None, "no", None, "no", "no", 1, 3, 1, 1, 0, 0, 0, "yes", 0, 0, "2.1.jpg", "right", "no", "yes", None, None),
    ]  # fmt: skip
    root.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=columns)
    frame.to_csv(root / "labels_mbrset.csv", index=False)
    for name in frame["file"]:
        image(root / "images" / name, mode="RGB")
    return root


def recipes5k(root: Path) -> Path:
    """annotations/{split}_images.txt + {split}_labels.txt + ingredients files, images/<food>/<file>.jpg."""
    notes = root / "annotations"
    notes.mkdir(parents=True, exist_ok=True)
    ingredients = ["onion,flour,egg,beer", "rice,salmon,nori", "onion,breadcrumbs,oil", "rice,tuna,nori,cucumber"]
    (notes / "ingredients_Recipes5k.txt").write_text("\n".join(ingredients) + "\n")
    (notes / "ingredients_simplified_Recipes5k.txt").write_text("onion,flour,egg,beer\nrice,fish,nori\nonion,bread,oil\nrice,fish,nori,cucumber\n")
    (notes / "classes_Recipes5k.txt").write_text("onion_rings\nsushi\n")
    splits = {"train": [("onion_rings/0_beer_onion_rings_hostedLargeUrl.jpg", 0), ("sushi/1_salmon_sushi_hostedLargeUrl.jpg", 1)],
              "val": [("onion_rings/2_baked_onion_rings_hostedLargeUrl.jpg", 2)],
              "test": [("sushi/3_tuna_roll_hostedLargeUrl.jpg", 3)]}  # fmt: skip
    for split, rows in splits.items():
        (notes / f"{split}_images.txt").write_text("".join(f"{p}\n" for p, _ in rows))
        (notes / f"{split}_labels.txt").write_text("".join(f"{i}\n" for _, i in rows))
        for p, _ in rows:
            image(root / "images" / p, mode="RGB")
    return root


def daquar(root: Path) -> Path:
    """qa.894.raw.{train,test}.txt (question line, answer line) + nyu_depth_images/image<N>.png."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qa.894.raw.train.txt").write_text(
        "what is on the right side of the black telephone and on the left side of the red chair in the image3 ?\ndesk\n"
        "what are the objects on the table in the image1 ?\ncup, plate, bottle\n"
        "how many chairs are in the image1 ?\n2\n")
    (root / "qa.894.raw.test.txt").write_text("what is under the table in the image5 ?\nchair, carpet\n")
    for n in (1, 3, 5):
        image(root / "nyu_depth_images" / f"image{n}.png", mode="RGB")
    return root


def cocoqa(root: Path) -> Path:
    """train/ and test/ with img_ids.txt, questions.txt, answers.txt, types.txt + COCO 2014 image folders."""
    splits = {"train": [(9, "what is the color of the bus", "red", 2), (25, "how many giraffes are standing", "two", 1),
                        (9, "what is parked on the street", "bus", 0)],
              "test": [(42, "what is the man holding", "bus", 0), (73, "what does the woman hold", "umbrella", 0)]}  # fmt: skip
    for split, rows in splits.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        for k, name in enumerate(("img_ids", "questions", "answers", "types")):
            (folder / f"{name}.txt").write_text("".join(f"{r[k]}\n" for r in rows))
        coco, prefix = ("train2014", "COCO_train2014_") if split == "train" else ("val2014", "COCO_val2014_")
        for r in rows:
            image(root / coco / f"{prefix}{r[0]:012d}.jpg", mode="RGB")
    return root


FAKEDDIT_COLUMNS = ["author", "clean_title", "created_utc", "domain", "hasImage", "id", "image_url", "linked_submission_id",
                    "num_comments", "score", "subreddit", "title", "upvote_ratio", "2_way_label", "3_way_label", "6_way_label"]


def fakeddit(root: Path) -> Path:
    """multimodal_{train,validate,test_public}.tsv (v2.0 header, tab-separated) + public_image_set/<id>.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    splits = {"train": [("c3t1gq", "my cat sits on the roof", True, 1), ("8ql0ap", "dog wins election", True, 0),
                        ("e5a9xb", "", True, 1), ("d4s8zz", "no image here", False, 0)],
              "validate": [("0aa1bb", "sunset over the lake", True, 1)],
              "test_public": [("1cc2dd", "man builds house from cheese", True, 0)]}  # fmt: skip
    for split, rows in splits.items():
        records = [{"author": "someone", "clean_title": title, "created_utc": 1.5e9, "domain": "i.imgur.com", "hasImage": has,
                    "id": i, "image_url": f"https://i.imgur.com/{i}.jpg" if has else None, "linked_submission_id": None,
                    "num_comments": 3.0, "score": 10, "subreddit": "pics", "title": title.capitalize(), "upvote_ratio": 0.9,
                    "2_way_label": label, "3_way_label": label * 2, "6_way_label": label} for i, title, has, label in rows]  # fmt: skip
        pd.DataFrame(records, columns=FAKEDDIT_COLUMNS).to_csv(root / f"multimodal_{split}.tsv", sep="\t", index=False)
        for i, _, has, _ in rows:
            if has:
                image(root / "public_image_set" / f"{i}.jpg", mode="RGB")
    return root
