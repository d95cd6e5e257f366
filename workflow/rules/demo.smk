DEMO = SHEET[[is_demo(p) for p in SHEET["gex"]]]


if len(DEMO):

    rule demo_simulate:
        """Simulate the embedded trial-like cohort (only the sheet rows under resources/demo/)."""
        input:
            ifn=resource("resources/genesets/IFN.gmt"),
            ifn_alpha=resource(
                "resources/genesets/HALLMARK_INTERFERON_ALPHA_RESPONSE.gmt"
            ),
            baff=resource("resources/genesets/BAFF.gmt"),
            germline=resource("resources/germline/human_ig_segments.tsv"),
            nfkb2=resource("resources/genesets/NFKB2_NONCANONICAL.gmt"),
        output:
            h5=[local(p) for p in DEMO["gex"] if p.endswith(".h5")],
            mtx=[directory(local(p)) for p in DEMO["gex"] if not p.endswith(".h5")],
            bcr=[local(p) for p in DEMO["bcr"] if p and is_demo(p)],
            tcr=[local(p) for p in DEMO["tcr"] if p and is_demo(p)],
            truth=directory("resources/demo/truth"),
        log:
            "logs/demo_simulate.log",
        conda:
            "../../envs/gex.yaml"
        threads: 1
        resources:
            # the simulator holds one sample's dense means at a time
            mem_mb=mem_mb(1000 + config["demo"]["cells_per_sample"] * 4),
            runtime=runtime(20),
        params:
            sheet=DEMO,
            demo=config["demo"],
            seed=config["seed"],
            post_min_day=config["tracking"]["post_min_day"],
        script:
            "../../scripts/demo_simulate.py"
