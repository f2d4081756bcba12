using System.Text.Json;
using MlFunctions.Core.Datasets;
using MlFunctions.Core.Imaging;
using MlFunctions.Core.Json;
using MlFunctions.Core.Pipelines;
using MlFunctions.Core.Sweeps;
using MlFunctions.Core.Training;

namespace MlFunctions.Imaging.Tests;

/// <summary>The <c>ct</c> dataset kind of a pipeline spec: its validation problems, the validate step's checks and the prepared splits.</summary>
public sealed class CtPipelineTests
{
    private static readonly CtSimulationSpec Tiny = new()
    {
        Protocol = new CtProtocol { Size = 64, PixelSpacingMm = 4.0, Angles = 96, LowDoseFraction = 0.1 },
        Subjects = 5,
        SlicesPerSubject = 2,
        Seed = 5,
    };

    private static IReadOnlyList<CtFile> Files() => CtSimulator.Simulate(Tiny, noiseless: false).SelectMany(s => CtSliceDataset.Files(s.Pair)).ToList();

    private static PipelineSpec Spec(CtDatasetSpec? ct = null) => new()
    {
        Name = "ct-denoise",
        Dataset = new PipelineDataset { Kind = DatasetKinds.Ct },
        Ct = ct ?? new CtDatasetSpec { Simulate = Tiny, Patch = 32, Patches = 64 },
        Model = "dncnn",
        Metric = "psnr",
        Hyperparameters = new HyperParameters { Channels = [8, 8] },
    };

    [Fact]
    public void The_example_spec_and_the_quick_spec_are_valid()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "MlFunctions.sln")))
            root = Path.GetDirectoryName(root)!;
        var spec = JsonSerializer.Deserialize<PipelineSpec>(File.ReadAllText(Path.Combine(root, "examples", "pipelines", "ct.json")), MlJson.Options)!;
        Assert.True(spec.Problems().Count == 0, string.Join("; ", spec.Problems()));
        Assert.Equal(DatasetKinds.Ct, spec.Dataset.Kind);
        Assert.Equal(0.1, spec.Ct!.Simulate!.Protocol.LowDoseFraction);
        Assert.Equal(ReconstructionFilter.Hann, spec.Ct.Simulate.Protocol.Filter);
        Assert.True(spec.RegisterInput() is { Recursive: true, SimulateCt: not null });
        Assert.NotNull(spec.Recipe().Ct);
        Assert.NotNull(spec.ValidationRules().Ct);
        Assert.Contains(spec.DefaultSpace(), p => p.Name == "patchSize");
    }

    [Fact]
    public void A_ct_spec_lists_every_problem_at_once()
    {
        var bad = Spec(new CtDatasetSpec { Simulate = Tiny with { Subjects = 2, Protocol = Tiny.Protocol with { Size = 8, Angles = 2 } }, Patch = 600, Patches = 1 }) with
        {
            Model = "mlp",
            Metric = "accuracy",
            Dataset = new PipelineDataset { Kind = DatasetKinds.Ct, SourceDirectories = ["scans"] },
        };
        var problems = bad.Problems();
        Assert.Contains(problems, p => p.Contains("simulates (ct.simulate) or reads"));
        Assert.Contains(problems, p => p.Contains("size 8 is outside"));
        Assert.Contains(problems, p => p.Contains("views is outside"));
        Assert.Contains(problems, p => p.Contains("subjects must be at least 3"));
        Assert.Contains(problems, p => p.Contains("ct.patch must be between"));
        Assert.Contains(problems, p => p.Contains("ct.patches must be between"));
        Assert.Contains(problems, p => p.Contains("\"dncnn\""));
        Assert.Contains(problems, p => p.Contains("metric must be one of psnr, ssim"));

        // Ingest without sources, and a ct section on another kind.
        var ingest = Spec(new CtDatasetSpec()).Problems();
        Assert.Contains(ingest, p => p.Contains("sourceDirectories"));
        var misplaced = (Spec() with { Dataset = new PipelineDataset { Kind = DatasetKinds.Tabular, SourceDirectories = ["x"] } }).Problems();
        Assert.Contains(misplaced, p => p.Contains("the ct section is for dataset.kind \"ct\""));
        Assert.True(Spec().Problems().Count == 0, string.Join("; ", Spec().Problems()));
    }

    [Fact]
    public void Validation_names_a_corrupt_png_a_missing_sidecar_an_incomplete_pair_a_wrong_size_and_too_few_subjects()
    {
        var files = Files().ToList();
        var rules = new CtValidationRules { Patch = 32 };
        Assert.Empty(CtPreparation.Problems(CtSliceDataset.Read(files), rules));

        var broken = files
            .Where(f => f.Path != "sim-001/000.json" && f.Path != "sim-002/001_full.png")
            .Select(f => f.Path == "sim-000/001_low.png" ? f with { Bytes = f.Bytes[..(f.Bytes.Length / 2)] } : f)
            .Select(f => f.Path == "sim-003/000_full.png" ? f with { Bytes = "not a png"u8.ToArray() } : f)
            .ToList();
        var small = CtSimulator.Simulate(Tiny with { Subjects = 1, SlicesPerSubject = 1, SubjectPrefix = "odd", Protocol = Tiny.Protocol with { Size = 48 } }, noiseless: false);
        broken.AddRange(small.SelectMany(s => CtSliceDataset.Files(s.Pair)));
        var problems = CtPreparation.Problems(CtSliceDataset.Read(broken), new CtValidationRules { Patch = 56 });
        Assert.Contains(problems, p => p.StartsWith("sim-001/000: no sidecar", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("sim-002/001: pair incomplete, no full-dose image", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("sim-000/001_low.png:", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("sim-003/000_full.png: is not a PNG", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("odd-000/000: 48×48, but most slices are 64×64", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("odd-000/000: 48×48 is smaller than the 56×56 training patch", StringComparison.Ordinal));

        var two = files.Where(f => f.Path.StartsWith("sim-000/", StringComparison.Ordinal) || f.Path.StartsWith("sim-001/", StringComparison.Ordinal));
        Assert.Contains(CtPreparation.Problems(CtSliceDataset.Read(two), rules), p => p.Contains("at least 3 are needed"));
    }

    [Fact]
    public void Preparation_keeps_subjects_apart_cuts_train_patches_and_keeps_held_out_slices_whole()
    {
        var read = CtSliceDataset.Read(Files());
        var prepared = CtPreparation.Prepare(read.Pairs, new CtRecipe { Patch = 32, Patches = 40, ValidationFraction = 0.2, TestFraction = 0.2, Seed = 3 });
        Assert.Equal([2, 32, 32], prepared.Shards[PreparedLayout.Train].SampleShape);
        Assert.Equal(40, prepared.Shards[PreparedLayout.Train].Count);
        Assert.Equal([2, 64, 64], prepared.Shards[PreparedLayout.Val].SampleShape);
        Assert.Equal(2, prepared.Shards[PreparedLayout.Val].Count);
        Assert.Equal(2, prepared.Shards[PreparedLayout.Test].Count);
        Assert.Equal(3, prepared.Subjects.Values.Count(s => s == CtSplit.Train));
        Assert.Single(prepared.Subjects.Values, s => s == CtSplit.Test);

        // Held-out slices come back as the pairs they were (within float rounding of HU × 1e-3).
        var test = CtPreparation.Pairs(prepared.Shards[PreparedLayout.Test], "test");
        var subject = prepared.Subjects.Single(kv => kv.Value == CtSplit.Test).Key;
        var original = read.Pairs.Where(p => p.Subject == subject).ToList();
        for (var i = 0; i < original.Count; i++)
            Assert.All(original[i].Low.Pixels.Zip(test[i].Low.Pixels), p => Assert.Equal(p.First, p.Second, 0.01));
    }

    [Fact]
    public void The_sweep_maps_depth_width_and_patch_size_onto_the_denoiser()
    {
        var template = new TrainingJob { JobId = "t", Model = "dncnn", Hyperparameters = new HyperParameters(), Data = new PreparedDataRef("prepared", "p", "h") };
        var job = TrialJobs.ForTrial(template, "t1", new ParameterSet(new Dictionary<string, string> { ["depth"] = "6", ["width"] = "48", ["patchSize"] = "32", ["learningRate"] = "0.002" }), null, new Dictionary<string, string>());
        Assert.Equal([48, 48, 48, 48, 48], job.Hyperparameters.Channels);
        Assert.Equal(32, job.Hyperparameters.PatchSize);
        Assert.Equal(0.002, job.Hyperparameters.LearningRate);
    }
}
