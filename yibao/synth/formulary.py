"""What the synthetic region prescribes and charges for each diagnosis.

SYNTHETIC and illustrative: these pools decide which items of the shipped
sample medical list appear on a generated encounter.  They aim at plausible
claims (antihypertensives for I10, a stent for a PCI, dialysis sessions for
N18.5), not at clinical guidance.  A few pools deliberately hold items whose
payment restriction does not fit every patient (for example 奥司他韦, limited
to influenza, offered for a common cold) so that a realistic small share of
lines falls outside the restricted scope; the generator keeps only a small
fraction of those and labels them in ``ground_truth``.

A therapy is found by the longest ICD-10 prefix of the diagnosis.  Department
codes follow the "A + 诊疗科目 two digits" pattern (A03 内科, A04 外科,
A05 妇产科, A07 儿科, A10 眼科, A11 耳鼻咽喉科, A12 口腔科, A13 皮肤科,
A15 精神科, A17 结核病科, A19 肿瘤科) and are used illustratively.
"""

from __future__ import annotations

from dataclasses import dataclass

Pool = tuple[tuple[str, float], ...]


def pool(*items: str | tuple[str, float]) -> Pool:
    """``pool("A", ("B", 2))`` → ``(("A", 1.0), ("B", 2.0))``."""
    return tuple((it, 1.0) if isinstance(it, str) else (it[0], float(it[1])) for it in items)


@dataclass(frozen=True)
class Slot:
    """A charge that appears with probability ``p``; one of ``alts`` (weighted).

    ``qty``: ``"auto"`` (by the item's quantity basis: per day × days, per
    session × sessions, or the per-use quantity), ``"once"`` (the per-use
    quantity) or ``(lo, hi)`` units.
    """

    alts: Pool
    p: float = 1.0
    qty: str | tuple[int, int] = "auto"


def slot(*alts: str | tuple[str, float], p: float = 1.0, qty: str | tuple[int, int] = "auto") -> Slot:
    return Slot(pool(*alts), p, qty)


@dataclass(frozen=True)
class Proc:
    """A procedure with its charges; chosen with weight ``w`` where the level allows."""

    oprn_codg: str
    w: float
    min_level: int
    items: tuple[tuple[str, int], ...]  # (code, units)


@dataclass(frozen=True)
class Therapy:
    dept: str = "A03"
    drugs: Pool = ()  # prescriptions (ambulatory) – distinct picks
    n_drugs: tuple[int, int] = (1, 3)
    child_drugs: Pool = ()  # used instead of drugs under 12
    tests: Pool = ()
    n_tests: tuple[int, int] = (0, 1)
    extras: tuple[Slot, ...] = ()  # other charges (services, consumables)
    # inpatient
    ip_drugs: Pool = ()
    n_ip_drugs: tuple[int, int] = (2, 5)
    ip_child_drugs: Pool = ()
    ip_tests: Pool = ()
    n_ip_tests: tuple[int, int] = (1, 3)
    ip_extras: tuple[Slot, ...] = ()
    procs: tuple[Proc, ...] = ()
    p_proc: float = 0.0
    los: float = 7.0  # median length of stay, days
    min_level: int = 1


URI_CHILD = pool(("W1701", 2), ("Z0147", 2), ("W0802", 2), "W1706", "W1703", "Z0146")

T: dict[str, Therapy] = {
    # --- respiratory ---------------------------------------------------------
    "J06": Therapy(
        drugs=pool(("Z0101", 2), ("Z0102", 2), "Z0103", ("W0803", 2), ("W0801", 2), "Z0120", "Z0168", "Z0169", ("W0523", 0.3), "W0501", ("W0512", 0.5)),
        child_drugs=URI_CHILD,
        tests=pool(("S0401", 3), "S0409", ("S0425", 0.5)),
    ),
    "J02": Therapy(
        dept="A11",
        drugs=pool("Z0121", "Z0122", "Z0120", ("W0501", 2), "W0502", "W0512", "Z0170", "W0803"),
        child_drugs=URI_CHILD,
        tests=pool("S0401", "S0409"),
    ),
    "J03": Therapy(
        dept="A11",
        drugs=pool("Z0121", "Z0122", ("W0501", 2), "W0502", "W0503", "W0803"),
        child_drugs=pool("W1703", "W1704", "W0802", "Z0147"),
        tests=pool("S0401", "S0409"),
        n_tests=(1, 2),
    ),
    "J11": Therapy(
        drugs=pool(("W0523", 3), ("Z0101", 2), ("W0803", 2), "W0801"),
        child_drugs=pool(("W0523", 2), "W0802", "Z0147"),
        tests=pool(("S0425", 3), "S0401"),
        n_tests=(1, 2),
    ),
    "J21": Therapy(
        dept="A07",
        drugs=pool(("W0413", 2), "W1704", "Z0146"),
        child_drugs=pool(("W0413", 2), "W1704", "Z0146"),
        tests=pool("S0401"),
        extras=(slot("S0306", p=0.6),),
        ip_drugs=pool(("W0413", 2), "W0407", "W1704", "Z0146", "W0507"),
        ip_child_drugs=pool(("W0413", 2), "W0407", "W1704", "Z0146", "W0507", "W1702"),
        ip_tests=pool("S0401", "S0409", "S0501"),
        ip_extras=(slot("S0306"), slot("S0305", p=0.5)),
        los=5,
    ),
    "B34": Therapy(drugs=pool("W0803", "Z0102", "Z0103", "Z0101"), child_drugs=URI_CHILD, tests=pool("S0401")),
    "R05": Therapy(
        drugs=pool("W0410", "W0406", "W0409", "Z0143", "Z0144", "Z0142", "Z0145", ("W0414", 0.3)),
        child_drugs=pool("Z0146", "W0406", "Z0143"),
        tests=pool("S0501", "S0401"),
    ),
    "R50": Therapy(dept="A07", drugs=pool("W0803", "W0801"), child_drugs=pool(("W0802", 2), "W1706", "W1701"), tests=pool(("S0401", 2), "S0409"), n_tests=(1, 2)),
    "J20": Therapy(
        drugs=pool("W0406", "W0408", "W0409", "W0502", "W0512", "W0504", "W0510", "Z0145", "Z0144"),
        child_drugs=pool("W1703", "W1704", "Z0146", "W0413"),
        tests=pool(("S0401", 2), "S0501"),
    ),
    "J30": Therapy(dept="A11", drugs=pool("W1508", "W1509", "W1410", "W1411", "W1412", "W0404"), child_drugs=pool(("W0405", 2), "W1410", "W1509")),
    "J32": Therapy(dept="A11", drugs=pool("W1508", "W1509", "W0502", "W0514")),
    "J45": Therapy(drugs=pool(("W0401", 2), "W0402", ("W0411", 2), "W0404", "W0412"), child_drugs=pool(("W0405", 2), "W0413", "W0411")),
    "J44": Therapy(
        drugs=pool(("W0403", 2), ("W0401", 2), "W0402", "W0411", "W0412", "W0406", "W0415", "Z0135", "Z0136"),
        tests=pool("S0501"),
        ip_drugs=pool("W0403", "W0401", ("W0413", 2), "W0407", ("W0506", 2), "W0511", "W0810", "W0412"),
        ip_tests=pool("S0415", "S0501", "S0503", "S0409"),
        ip_extras=(slot("S0305"), slot("S0306", p=0.7), slot("C0125", p=0.8)),
        los=9,
    ),
    "J18": Therapy(
        drugs=pool("W0502", "W0512", "W0504", "W0510"),
        ip_drugs=pool(("W0506", 3), ("W0507", 2), "W0508", "W0509", "W0513", "W0511", "W0510", ("W0407", 2), "W0406", "W0413", ("W0810", 0.5), ("W0518", 0.3), ("Z0101", 0.5)),
        ip_child_drugs=pool(("W0507", 2), "W1703", "W1704", ("W0413", 2), "W0407", "W1702"),
        ip_tests=pool(("S0501", 2), "S0503", ("S0409", 2), "S0418", "S0420", ("S0415", 0.5)),
        ip_extras=(slot("S0305", p=0.5), slot("S0306", p=0.5)),
        los=8,
    ),
    "J15": Therapy(
        ip_drugs=pool(("W0506", 2), "W0508", "W0509", "W0511", ("W0518", 0.5), "W0519", "W0407"),
        ip_tests=pool("S0501", "S0503", "S0418", "S0420", "S0415"),
        ip_extras=(slot("S0305", p=0.7),),
        los=10,
    ),
    # --- infections / digestive ----------------------------------------------
    "A09": Therapy(
        drugs=pool(("W0709", 2), "W0713", "W0710", "W0515", "W0719", "Z0117", "Z0118"),
        child_drugs=pool(("W0709", 2), "W0713", "W0710"),
        tests=pool(("S0403", 2), "S0401"),
        ip_drugs=pool("W0709", "W0713", "W0710", "W1305", "W1304"),
        ip_tests=pool("S0403", "S0410", "S0401"),
        los=4,
    ),
    "K29": Therapy(drugs=pool(("W0701", 2), "W0702", "W0703", "W0705", "W0706", "W0707", "W0708", "Z0140", "Z0141", "Z0137"), tests=pool(("S0513", 0.3), "S0507")),
    "K30": Therapy(drugs=pool("W0707", "W0708", "W0714", "Z0138", "Z0139", "Z0141", "W0701")),
    "K21": Therapy(drugs=pool("W0701", "W0702", "W0703", "W0705", "W0706"), tests=pool("S0513")),
    "K59": Therapy(drugs=pool("W0711", "W0712", "Z0138")),
    "K02": Therapy(dept="A12", drugs=pool("W0501", "W0515", "W0803", "W0801")),
    "B18": Therapy(drugs=pool(("W0524", 3), "W0525"), n_drugs=(1, 1), tests=pool("S0404", "S0412"), n_tests=(1, 2)),
    "K35": Therapy(
        dept="A04",
        ip_drugs=pool(("W0507", 2), "W0515", "W0506"),
        ip_tests=pool("S0507", "S0409"),
        procs=(
            Proc("47.09", 1.0, 1, (("S0601", 1), ("S0621", 1), ("C0121", 1))),
            Proc("47.01", 1.5, 2, (("S0602", 1), ("S0620", 1), ("C0116", 1))),
        ),
        p_proc=0.9,
        los=5,
    ),
    "K80": Therapy(
        dept="A04",
        drugs=pool("W0715", "W0703"),
        ip_drugs=pool(("W0507", 2), "W0515", "W0715", "W0703", ("W0907", 0.5)),
        ip_tests=pool("S0507", "S0404", "S0504"),
        procs=(Proc("51.23", 1.0, 2, (("S0603", 1), ("S0620", 1), ("C0116", 1), ("C0117", 4))),),
        p_proc=0.8,
        los=6,
    ),
    "K81": Therapy(
        dept="A04",
        ip_drugs=pool(("W0507", 2), "W0515", "W0506", ("W0715", 0.5)),
        ip_tests=pool("S0507", "S0404", "S0409"),
        procs=(Proc("51.23", 1.0, 2, (("S0603", 1), ("S0620", 1), ("C0116", 1), ("C0117", 4))),),
        p_proc=0.5,
        los=7,
    ),
    "K40": Therapy(
        dept="A04",
        ip_drugs=pool("W0507", "W0803"),
        ip_tests=pool("S0507"),
        procs=(Proc("53.00", 1.0, 1, (("S0612", 1), ("S0621", 1), ("C0112", 1))),),
        p_proc=0.95,
        los=4,
    ),
    "K92": Therapy(
        ip_drugs=pool(("W0704", 3), "W1316", "W1314", "W0703"),
        ip_tests=pool(("S0513", 2), "S0401", "S0411"),
        los=7,
    ),
    "A41": Therapy(
        ip_drugs=pool(("W0518", 2), "W0519", "W0526", "W0509", "W0527", "W1307", "W1305", "W0323"),
        n_ip_drugs=(3, 6),
        ip_tests=pool(("S0418", 2), ("S0420", 2), "S0415", "S0411"),
        n_ip_tests=(2, 4),
        ip_extras=(slot("S0204", qty=(2, 6)), slot("S0317", p=0.4, qty=(24, 96)), slot("C0122", p=0.6), slot("S0315", qty=(24, 120))),
        los=14,
        min_level=2,
    ),
    # --- cardiovascular / metabolic ------------------------------------------
    "I10": Therapy(
        drugs=pool(
            ("W0101", 3), "W0102", "W0103", ("W0104", 2), ("W0105", 2), "W0106", "W0107", "W0108", "W0109", "W0110", ("W0111", 0.5),
            "W0112", "W0113", "W0114", "W0115", "W0116", "W0117", "W0118", "W0121", "W0122", ("Z0133", 0.5), ("Z0134", 0.5), "W0307", "W0301",
        ),
        tests=pool(("S0510", 2), "S0405", "S0406", ("S0512", 0.5)),
    ),
    "I11": Therapy(drugs=pool(("W0101", 2), ("W0104", 2), "W0105", "W0112", "W0114", "W0120", "W0313", "W0301"), tests=pool("S0510", "S0508", "S0426")),
    "E11": Therapy(
        drugs=pool(
            ("W0201", 4), ("W0202", 2), "W0203", "W0204", "W0205", ("W0206", 2), "W0207", "W0208", "W0209", "W0210", "W0211", "W0212", "W0213",
            "W0215", "W0216", "W0217", "W0218", "W0219", ("W0214", 0.3), ("W0220", 0.5), ("Z0130", 0.5), ("Z0131", 0.3), ("Z0132", 0.3),
            ("C0119", 0.5), ("C0120", 0.5),
        ),
        tests=pool(("S0407", 3), ("S0408", 2), "S0419", "S0405", ("S0519", 0.3)),
    ),
    "E11.4": Therapy(drugs=pool(("W0201", 3), "W0203", "W0206", "W0216", ("W1403", 2), "W1816"), tests=pool("S0407", "S0408")),
    "E11.2": Therapy(drugs=pool(("W0201", 2), "W0206", "W0212", "W0216", "W0104", "W0105", ("W1208", 0.3)), tests=pool("S0405", "S0419", "S0408")),
    "E11.6": Therapy(
        drugs=pool("W0201", "W0216"),
        ip_drugs=pool(("W0215", 2), ("W0216", 2), "W0218", "W0201", "W0210", ("W1403", 0.5)),
        ip_tests=pool(("S0408", 2), "S0419", "S0405", "S0406"),
        ip_extras=(slot("S0316", qty=(8, 40)),),
        los=9,
    ),
    "E10": Therapy(drugs=pool(("W0215", 2), ("W0216", 2), "W0217", "W0218", "W0219", "C0119", "C0120"), tests=pool("S0407", "S0408")),
    "E78": Therapy(drugs=pool(("W0301", 2), ("W0302", 2), "W0303", "W0304", "W0305", "W0306", "Z0133"), tests=pool(("S0406", 3), "S0404")),
    "E03": Therapy(drugs=pool("W1401"), n_drugs=(1, 1), tests=pool("S0414")),
    "I25": Therapy(
        drugs=pool(("W0307", 3), ("W0308", 2), ("W0301", 2), "W0302", "W0310", "W0311", "W0317", ("W0309", 0.5), "Z0104", "Z0105", "Z0106", "Z0113", "W0112"),
        tests=pool("S0510", "S0416"),
        ip_drugs=pool(("W0307", 2), ("W0308", 2), "W0309", "W0301", "W0302", "W0310", "W0318", "W0319", "W0322", "Z0109"),
        ip_tests=pool(("S0510", 2), "S0416", "S0417", "S0508", "S0511", "S0426"),
        ip_extras=(slot("S0315", p=0.6, qty=(12, 72)),),
        procs=(
            Proc("36.07", 3.0, 2, (("S0604", 1), ("C0106", 1), ("C0134", 1), ("S0622", 1), ("W1309", 1))),
            Proc("00.66", 1.0, 2, (("S0605", 1), ("C0134", 1), ("S0622", 1))),
        ),
        p_proc=0.25,
        los=7,
        min_level=2,
    ),
    "I20": Therapy(
        ip_drugs=pool(("W0307", 2), ("W0308", 2), "W0309", "W0301", "W0310", "W0318", "W0322", "W0317", "Z0109"),
        ip_tests=pool(("S0510", 2), "S0416", "S0417", "S0508"),
        ip_extras=(slot("S0315", p=0.8, qty=(12, 72)),),
        procs=(Proc("36.07", 3.0, 2, (("S0604", 1), ("C0106", 1), ("C0134", 1), ("S0622", 1), ("W1309", 1))),),
        p_proc=0.4,
        los=7,
        min_level=2,
    ),
    "I21": Therapy(
        ip_drugs=pool(("W0307", 2), ("W0308", 2), ("W0309", 2), "W0301", "W0318", "W0322", ("W0320", 0.3), "W0323"),
        ip_tests=pool(("S0417", 2), "S0416", "S0510", "S0508", "S0426"),
        ip_extras=(slot("S0204", p=0.5, qty=(1, 3)), slot("S0315", qty=(24, 96))),
        procs=(Proc("36.07", 1.0, 2, (("S0604", 1), ("C0106", 2), ("C0134", 1), ("S0622", 1), ("W1309", 1))),),
        p_proc=0.7,
        los=9,
        min_level=2,
    ),
    "I50": Therapy(
        drugs=pool(("W0313", 2), "W0120", "W0112", "W0119", "W0312", "W0212"),
        ip_drugs=pool(("W0321", 2), "W0313", "W0119", "W0212", "W0112", "W0120", "W0312", ("W0324", 0.5), "W0323"),
        ip_tests=pool(("S0426", 2), "S0508", "S0501", "S0410"),
        ip_extras=(slot("S0305", p=0.6), slot("S0315", p=0.6, qty=(12, 72))),
        los=9,
    ),
    "I48": Therapy(ip_drugs=pool("W0316", "W0314", "W0315", "W0312", "W0112"), ip_tests=pool("S0510", "S0511", "S0508"), los=6),
    "I63": Therapy(
        ip_drugs=pool(("W0307", 2), ("W0308", 2), ("W0301", 2), "W1813", "Z0110", ("Z0109", 0.5), "W1812", "Z0111", "Z0112", ("W0320", 0.2)),
        n_ip_drugs=(3, 6),
        ip_tests=pool(("S0502", 2), "S0506", "S0509", "S0510", "S0411"),
        ip_extras=(slot("S0314", p=0.5, qty=(3, 10)), slot("S0311", p=0.3, qty=(3, 10))),
        procs=(Proc("99.10", 1.0, 2, (("S0625", 1), ("W0320", 2))),),
        p_proc=0.08,
        los=12,
        min_level=2,
    ),
    "I61": Therapy(
        ip_drugs=pool(("W1812", 3), "W0301", "W1314", "W1813", ("Z0125", 0.3)),
        ip_tests=pool(("S0502", 3), "S0411", "S0410"),
        ip_extras=(slot("S0204", p=0.4, qty=(2, 5)),),
        procs=(Proc("01.39", 1.0, 2, (("S0624", 1), ("S0620", 1), ("C0121", 1))),),
        p_proc=0.2,
        los=14,
        min_level=2,
    ),
    # --- musculoskeletal / injuries ------------------------------------------
    "M54": Therapy(
        drugs=pool(("W0801", 2), "W0804", "W0805", "W0806", "W0813", "Z0129", "Z0152", ("W1403", 0.5), "Z0171"),
        extras=(slot("S0311", p=0.3), slot("S0312", p=0.3), slot("S0313", p=0.2)),
    ),
    "M47": Therapy(drugs=pool("W0801", "W0806", "Z0153", "Z0129", "W0813"), extras=(slot("S0311", p=0.3), slot("S0312", p=0.4))),
    "M51": Therapy(
        drugs=pool("W0806", "W0805", "Z0152"),
        ip_drugs=pool(("W0806", 2), "W1812", "W0810", ("W1816", 0.5), ("Z0129", 0.5), "W0916"),
        ip_tests=pool("S0506", "S0401"),
        ip_extras=(slot("S0311", p=0.6, qty=(5, 10)), slot("S0312", p=0.6, qty=(5, 10)), slot("S0314", p=0.4, qty=(3, 10))),
        los=10,
    ),
    "M17": Therapy(
        drugs=pool(("W0807", 2), "W0801", "W0805", "W0813", "Z0154", "Z0129", "W0806"),
        extras=(slot("S0311", p=0.2), slot("S0314", p=0.2)),
        ip_drugs=pool(("W0507", 2), "W0319", "W0805", "W0916"),
        ip_tests=pool("S0506", "S0411"),
        procs=(Proc("81.54", 1.0, 2, (("S0610", 1), ("S0620", 1), ("C0109", 1), ("C0121", 1))),),
        p_proc=0.7,
        los=10,
        min_level=2,
    ),
    "M81": Therapy(drugs=pool(("W0814", 2), "W1407", "W1204", "Z0154"), tests=pool("S0515")),
    "M10": Therapy(drugs=pool("W0815", "W0816", "W0804"), tests=pool("S0405")),
    "T14": Therapy(dept="A04", drugs=pool("W0813", "Z0126", "Z0128", "W0801"), extras=(slot("S0307", p=0.5), slot("C0131", p=0.5), slot("S0308", p=0.2))),
    "S93": Therapy(dept="A04", drugs=pool("W0813", "Z0126", "Z0127", "W0801"), extras=(slot("C0118", p=0.6),), tests=pool("S0501")),
    "S72": Therapy(
        dept="A04",
        drugs=pool("W0801", "W0803", "W0813"),
        ip_drugs=pool(("W0507", 2), "W0319", "W0801", "W0916", ("W0905", 0.5)),
        ip_tests=pool(("S0501", 2), "S0411", "S0510"),
        procs=(
            Proc("81.51", 1.5, 2, (("S0609", 1), ("S0620", 1), ("C0108", 1), ("C0121", 1))),
            Proc("79.35", 1.0, 1, (("S0611", 1), ("S0621", 1), ("C0111", 1), ("C0121", 1))),
        ),
        p_proc=0.9,
        los=14,
        min_level=2,
    ),
    "S52": Therapy(
        dept="A04",
        ip_drugs=pool("W0801", "Z0126", "W0803"),
        ip_tests=pool(("S0501", 2),),
        procs=(
            Proc("79.02", 2.0, 1, (("S0623", 1), ("S0622", 1), ("C0118", 2))),
            Proc("79.35", 1.0, 1, (("S0611", 1), ("S0621", 1), ("C0110", 1))),
        ),
        p_proc=0.9,
        los=4,
    ),
    "S06": Therapy(dept="A04", ip_drugs=pool("W1812", "W0803", "W0801"), ip_tests=pool(("S0502", 3),), los=5),
    "R56": Therapy(dept="A07", ip_drugs=pool(("W0912", 2), "W0802", ("Z0125", 0.5), "W1706"), ip_tests=pool("S0401", "S0409", "S0410"), los=3),
    # --- genitourinary / women -----------------------------------------------
    "N39": Therapy(drugs=pool("W0510", ("W0516", 2), "W0517", "W0504", ("W1605", 0.2)), tests=pool(("S0402", 3), ("S0420", 0.5)), n_tests=(1, 2)),
    "N76": Therapy(dept="A05", drugs=pool(("W1605", 2), "W1606", "W0515", "Z0148"), tests=pool("S0517")),
    "N41": Therapy(drugs=pool(("W1601", 2), ("W1602", 0.5), "Z0150", "Z0151", "W0510"), tests=pool("S0428", "S0518", "S0402")),
    "N40": Therapy(
        drugs=pool(("W1601", 2), "W1602", "Z0150", "Z0151"),
        tests=pool("S0428", "S0518"),
        ip_drugs=pool("W1601", "W1602", ("W0507", 2)),
        ip_tests=pool("S0518", "S0428"),
        procs=(Proc("60.29", 1.0, 2, (("S0613", 1), ("S0621", 1), ("C0105", 1))),),
        p_proc=0.8,
        los=7,
    ),
    "N20": Therapy(
        ip_drugs=pool("W1609", "W0719", "W0804", "W0507"),
        ip_tests=pool("S0518", "S0504", "S0402"),
        procs=(Proc("55.04", 1.0, 2, (("S0619", 1), ("S0620", 1))),),
        p_proc=0.4,
        los=5,
    ),
    "O80": Therapy(
        dept="A05",
        ip_drugs=pool(("W1311", 3), ("W1607", 0.3), "W1406", "W0801"),
        n_ip_drugs=(1, 2),
        ip_tests=pool("S0517", "S0401"),
        procs=(Proc("73.59", 1.0, 1, (("S0608", 1), ("S0622", 1))),),
        p_proc=1.0,
        los=3,
    ),
    "O82": Therapy(
        dept="A05",
        ip_drugs=pool(("W1311", 3), "W0507", "W1314", "W0801"),
        ip_tests=pool("S0517", "S0401", "S0411"),
        procs=(Proc("74.1", 1.0, 1, (("S0607", 1), ("S0621", 1), ("C0121", 1), ("C0105", 1))),),
        p_proc=1.0,
        los=5,
    ),
    "D25": Therapy(
        dept="A05",
        ip_drugs=pool("W0507", "W0801"),
        ip_tests=pool("S0517", "S0423"),
        procs=(Proc("68.41", 1.0, 2, (("S0614", 1), ("S0620", 1), ("C0116", 1))),),
        p_proc=0.8,
        los=6,
    ),
    # --- eye, skin, nerves, mind ---------------------------------------------
    "H10": Therapy(dept="A10", drugs=pool(("W1505", 2), "W1507", "W1506")),
    "H25": Therapy(
        dept="A10",
        ip_drugs=pool("W1505", "W1507"),
        n_ip_drugs=(1, 2),
        ip_tests=pool("S0519",),
        procs=(Proc("13.41", 1.0, 1, (("S0606", 1), ("S0622", 1), ("C0107", 1))),),
        p_proc=1.0,
        los=3,
    ),
    "L30": Therapy(dept="A13", drugs=pool(("W1501", 2), "W1410", "W1411", "W1412", "W1511", "W1502", "W1503")),
    "L20": Therapy(dept="A13", drugs=pool(("W1501", 2), "W1511", "W1410")),
    "G47": Therapy(drugs=pool(("W0911", 2), "W0912", "W0913", "W0915", "Z0157", "Z0158", "Z0155", "Z0156"), n_drugs=(1, 2)),
    "R51": Therapy(drugs=pool("W0801", "W0803", "Z0159", "Z0160", "Z0161", "W1814"), tests=pool(("S0502", 0.5),)),
    "G43": Therapy(drugs=pool("W0801", "W1814", "Z0159", "Z0160"), tests=pool("S0502")),
    "R42": Therapy(drugs=pool(("W1815", 2), "W1814", "Z0159", "Z0107"), tests=pool("S0502", "S0509")),
    "H81": Therapy(drugs=pool(("W1815", 2), "W1814"), tests=pool("S0502")),
    "F32": Therapy(dept="A15", drugs=pool(("W1801", 2), "W1802", "W1803", "W1817", ("W1804", 0.5), "Z0157"), n_drugs=(1, 2)),
    # --- home-bed conditions -------------------------------------------------
    "I69": Therapy(drugs=pool(("W0307", 2), "W0308", "W0301", "Z0111", "Z0112", "Z0162", "W0101")),
    "G20": Therapy(drugs=pool(("W1806", 2), "W1807")),
    "F03": Therapy(dept="A15", drugs=pool(("W1804", 2), ("W1811", 0.5), "W1805")),
    "C34": Therapy(
        dept="A19",
        drugs=pool("W0801", "W0406", "W0808", "W1020"),
        ip_drugs=pool(("W0507", 2), "W0907", "W0406", "W1306"),
        ip_tests=pool("S0503", "S0423", "S0413", "S0411"),
        procs=(Proc("32.41", 1.0, 3, (("S0616", 1), ("S0620", 1), ("C0116", 1))),),
        p_proc=0.7,
        los=12,
        min_level=2,
    ),
    "C50": Therapy(
        dept="A19",
        ip_drugs=pool("W0507", "W0801"),
        ip_tests=pool("S0423", "S0413"),
        procs=(Proc("85.43", 1.0, 2, (("S0615", 1), ("S0620", 1), ("C0121", 1))),),
        p_proc=0.85,
        los=9,
        min_level=2,
    ),
    "C18": Therapy(
        dept="A19",
        ip_drugs=pool(("W0507", 2), "W0515", "W1306"),
        ip_tests=pool("S0514", "S0423", "S0413"),
        procs=(Proc("45.73", 1.0, 2, (("S0617", 1), ("S0620", 1), ("C0113", 1))),),
        p_proc=0.8,
        los=13,
        min_level=2,
    ),
}

DEFAULT = Therapy(drugs=pool("W0803", "Z0102", "W0801"), tests=pool("S0401"))


def therapy_for(code: str) -> tuple[str, Therapy]:
    """The therapy of a diagnosis: longest matching ICD-10 prefix, else the default."""
    best = ""
    for key in T:
        if code.startswith(key) and len(key) > len(best):
            best = key
    return (best, T[best]) if best else ("", DEFAULT)


# --- settings ---------------------------------------------------------------------

OUTPATIENT_IMAGING = pool(("S0507", 3), ("S0501", 3), ("S0502", 1), ("S0503", 1.5), ("S0504", 1), ("S0508", 0.7), ("S0506", 0.5), ("S0510", 2))

OUTPATIENT_CONSULT = {  # by institution level (0 = primary centre)
    0: pool("S0106"),
    1: pool("S0101"),
    2: pool(("S0101", 7), ("S0102", 2), ("S0103", 1)),
    3: pool(("S0101", 6), ("S0102", 3), ("S0103", 1)),
}

INPATIENT_BASE = (
    slot(("S0201", 75), ("S0202", 20), ("S0203", 5)),  # bed, per day
    slot(("S0207", 60), ("S0206", 35), ("S0205", 5)),  # nursing, per day
    slot("S0105"),  # inpatient consultation, per day
    slot("S0401", qty=(1, 3)),
    slot("S0402", p=0.8, qty=(1, 2)),
    slot("S0404", p=0.8),
    slot("S0405", p=0.8),
    slot("S0410", p=0.6),
    slot("S0411", p=0.4),
    slot("S0510", p=0.6),
    slot("C0103", p=0.8),
)
INPATIENT_IV = (slot("S0301"), slot("C0102"), slot(("W1301", 3), ("W1302", 2), ("W1303", 1)), slot(("W1304", 1), ("W1305", 1), p=0.4))

PHARMACY_EXTRAS = pool(  # OTC, self-paid and wellness goods sold by pharmacies
    ("C0129", 1), ("C0130", 1), ("Z0167", 0.5), ("H0042", 0.5), ("H0044", 0.5), ("W1415", 1), ("C0120", 1), ("C0126", 0.3), ("C0127", 0.3), ("C0124", 2), ("W1413", 0.3), ("W1414", 0.3)
)
PHARMACY_DRUG_CLASSES_BARRED = ("narcotic", "psychotropic_1", "toxic", "radioactive")
WELLNESS_SERVICES = pool(("S0901", 1), ("S0902", 1), ("S0903", 1), ("S0904", 0.3), ("S0905", 0.5))

# --- outpatient special diseases (门诊特殊病), paid like inpatient care -----------


@dataclass(frozen=True)
class Schedule:
    kind: str  # dialysis / chemo / anti_rejection / tb
    period: int  # days between encounters
    count: tuple[int, int]  # encounters per patient per year
    levels: tuple[float, float, float]  # P(level 1, 2, 3)
    oprn_codg: str = ""
    dept: str = "A03"
    fixed: tuple[Slot, ...] = ()  # in-clinic charges, prd_days 0
    regimens: tuple[Pool, ...] = ()  # take-home prescriptions (prd_days = period), one regimen per patient
    clinic_regimens: tuple[Pool, ...] = ()  # in-clinic drugs (chemotherapy), one regimen per patient
    tests: Pool = ()
    n_tests: tuple[int, int] = (1, 2)
    sessions: tuple[int, int] = (1, 1)  # treatment sessions per encounter
    span_days: int = 0  # encounter covers this many days (0 = a single visit)
    consult: bool = False


ANTIEMETIC = slot(("W0716", 6), ("W0717", 3), ("W0718", 1))
CHEMO_COMMON = (
    slot("S0706"),
    slot("S0301", qty=(1, 2)),
    slot("C0102", qty=(1, 2)),
    slot("W1302", qty=(2, 3)),
    ANTIEMETIC,
    slot("W0811", qty=(1, 2)),
)
CHEMO_TESTS = pool(("S0401", 3), ("S0404", 2), "S0405", "S0413")

SPECIAL: dict[str, Schedule] = {
    "N18": Schedule(
        "dialysis", 30, (12, 12), (0.0, 0.5, 0.5), "39.95",
        fixed=(
            slot(("S0701", 9), ("S0702", 1)), slot("C0114"), slot("C0115"), slot("C0133"), slot("W1207"),
            slot("W1201", p=0.8), slot("W1202", p=0.3), slot("W1205", p=0.3),
        ),
        regimens=(pool("W1203", "W1204"), pool("W1206", "W1204"), pool("W1208", "W0101"), pool("W1203", "W0104", "W1407")),
        tests=pool(("S0405", 3), "S0401", "S0410", "S0427"),
        sessions=(8, 13),
        span_days=27,
    ),
    "C": Schedule(
        "chemo", 21, (4, 8), (0.0, 0.4, 0.6), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1002", "W1005"), pool("W1003", "W1007")),
        tests=CHEMO_TESTS,
    ),
    "C34": Schedule(
        "chemo", 21, (4, 6), (0.0, 0.4, 0.6), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1001", "W1002"), pool("W1010", "W1002"), pool("W1008", "W1003"), pool("W1009", "W1002")),
        regimens=((), (), pool("W1014"), pool("W1015")),
        tests=CHEMO_TESTS,
    ),
    "C50": Schedule(
        "chemo", 21, (4, 8), (0.0, 0.4, 0.6), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1009", "W1007"), pool("W1001"), pool("W1016", "W1009")),
        regimens=(pool("W1011"), pool("W1012"), pool("W1021"), ()),
        tests=CHEMO_TESTS,
    ),
    "C16": Schedule(
        "chemo", 21, (4, 8), (0.0, 0.4, 0.6), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1004"), pool("W1001", "W1005")),
        regimens=(pool("W1006"), ()),
        tests=CHEMO_TESTS,
    ),
    "C18": Schedule(
        "chemo", 21, (4, 8), (0.0, 0.4, 0.6), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1004", "W1005", "W1019"), pool("W1004"), pool("W1017", "W1004")),
        regimens=((), pool("W1006"), ()),
        tests=CHEMO_TESTS,
    ),
    "C61": Schedule(
        "chemo", 28, (3, 6), (0.0, 0.5, 0.5), "99.25", dept="A19",
        fixed=CHEMO_COMMON,
        clinic_regimens=(pool("W1009"),),
        regimens=(pool("W1013"),),
        tests=pool("S0428", "S0401"),
    ),
    "C53": Schedule(
        "radiotherapy", 21, (2, 4), (0.0, 0.0, 1.0), "92.24", dept="A19",
        fixed=(slot(("S0708", 1), ("S0705", 1)), ANTIEMETIC),
        clinic_regimens=(pool("W1002"),),
        tests=pool("S0401", "S0517"),
        sessions=(5, 10),
        span_days=14,
    ),
    "Z94": Schedule(
        "anti_rejection", 30, (12, 12), (0.0, 0.0, 1.0), consult=True,
        regimens=(pool("W1101", "W1103", "W0808"), pool("W1102", "W1103"), pool("W1101", "W1105"), pool("W1104", "W1103", "W0808")),
        tests=pool(("S0424", 3), "S0405", "S0401"),
    ),
    "A15": Schedule(
        "tb", 30, (6, 6), (0.0, 0.6, 0.4), dept="A17", consult=True,
        regimens=(pool("W0601", "W0602", "W0603", "W0604"), pool("W0607", "W0603", "W0604"), pool("W0605", "W0602", "W0603")),
        tests=pool(("S0404", 3), "S0501", "S0422"),
    ),
    "A16": Schedule(
        "tb", 30, (6, 6), (0.0, 0.6, 0.4), dept="A17", consult=True,
        regimens=(pool("W0601", "W0602", "W0603", "W0604"), pool("W0607", "W0603", "W0604")),
        tests=pool(("S0404", 3), "S0501"),
    ),
}


def schedule_for(code: str) -> Schedule:
    best = ""
    for key in SPECIAL:
        if code.startswith(key) and len(key) > len(best):
            best = key
    if not best:
        raise KeyError(f"no special-disease schedule for {code}")
    return SPECIAL[best]


def all_codes() -> set[str]:
    """Every medical-list code the formulary refers to (tests check they exist)."""
    out: set[str] = set()

    def add_pool(p):
        out.update(c for c, _ in p)

    for th in [*T.values(), DEFAULT]:
        for p in (th.drugs, th.child_drugs, th.tests, th.ip_drugs, th.ip_child_drugs, th.ip_tests):
            add_pool(p)
        for s in (*th.extras, *th.ip_extras):
            add_pool(s.alts)
        for pr in th.procs:
            out.update(c for c, _ in pr.items)
    add_pool(OUTPATIENT_IMAGING)
    for p in OUTPATIENT_CONSULT.values():
        add_pool(p)
    for s in (*INPATIENT_BASE, *INPATIENT_IV):
        add_pool(s.alts)
    add_pool(PHARMACY_EXTRAS)
    add_pool(WELLNESS_SERVICES)
    for sc in SPECIAL.values():
        for s in sc.fixed:
            add_pool(s.alts)
        for r in (*sc.regimens, *sc.clinic_regimens):
            add_pool(r)
        add_pool(sc.tests)
    out.update({"S-HB-SETUP", "S-HB-VISIT", "S-HB-NURSE"})
    return out
