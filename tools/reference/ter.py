#!/usr/bin/env python3
"""Reference values of TER for orchestrator/metrics/src/ter.rs: sacrebleu's `corpus_ter`
(default TER(): lowercased, whitespace tokens, Tercom's shifts), as lm-eval's `ter` metric
calls it.

    pip install sacrebleu==2.6.0 && python tools/reference/ter.py
"""

import sacrebleu

CASES = {
    "TER_SHORT": [
        ("Jeg liker kaffe.", "Jeg liker kaffe."),
        ("Hvor er stasjon?", "Hvor er stasjonen?"),
        ("Det snør i dag", "Det regner i dag."),
        ("", "Tom er trøtt."),
        ("Vet ikke", "56"),
    ],
    "TER_SHIFTS": [
        (
            "i dag regner det kraftig over hele Vestlandet , sa meteorologen",
            "Meteorologen sa at det regner kraftig over hele Vestlandet i dag .",
        )
    ],
    "TER_SWAP": [
        (
            "Bergen er en by på Vestlandet og Oslo er hovedstaden i Norge",
            "Oslo er hovedstaden i Norge og Bergen er en by på Vestlandet",
        )
    ],
    "TER_EMPTY_REFERENCE": [("Noe tekst", "")],
    # Shuffled repeated words: past Tercom's limit of 1000 shift candidates.
    "TER_CAP": [('ja ja ja nei nei nei nei kanskje ja nei ja nei kanskje nei ja ja nei ja kanskje nei nei nei ja kanskje kanskje ja nei nei ja ja ja kanskje ja ja ja ja kanskje ja nei ja ja ja ja ja kanskje ja nei ja ja ja nei nei nei ja kanskje ja kanskje nei nei ja', 'ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja ja nei kanskje ja nei ja')],
    "TER_LONG": [('inn med fisk , og jente kveld fortalte bestemoren historier om troll , hekser og modige fiskere som seilte langt ut på havet . og Det var en gang en liten gutt som bodde ved fjorden sammen mange med bestemoren sin . Hver morgen gikk han ned til brygga for å se på båtene som kom', 'Det var en gang en liten gutt som bodde ved fjorden sammen med bestemoren sin . Hver morgen gikk han ned til brygga for å se på båtene som kom inn med fisk , og hver kveld fortalte bestemoren historier om troll , hekser og modige fiskere som seilte langt ut på havet .')],
}

for name, pairs in CASES.items():
    hyps = [h for h, _ in pairs]
    refs = [[r for _, r in pairs]]
    print(f"{name} = {sacrebleu.corpus_ter(hyps, refs).score!r}")
