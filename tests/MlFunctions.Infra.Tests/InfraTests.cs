using System.Text.Json;
using System.Text.RegularExpressions;
using k8s.Models;
using MlFunctions.Activities.Training;
using MlFunctions.Core.Training;
using MlFunctions.Tests.Infrastructure;
using Xunit;

namespace MlFunctions.Infra.Tests;

public sealed class KubernetesManifestTests
{
    private static readonly string K8s = Path.Combine(RepoPaths.Root, "infra", "k8s");
    private static readonly KubernetesJobOptions JobDefaults = new();

    public static TheoryData<string> Overlays => new() { "cpu", "gpu" };

    private static List<object> Build(string overlay) => Kustomize.Build(Path.Combine(K8s, "overlays", overlay));

    private static V1Deployment Deployment(List<object> docs, string name) =>
        docs.OfType<V1Deployment>().Single(d => d.Metadata.Name == name);

    private static V1Container Container(V1Deployment d) => d.Spec.Template.Spec.Containers.Single();

    private static string? Env(V1Container c, string name) => c.Env?.SingleOrDefault(e => e.Name == name)?.Value;

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Overlay_renders_into_typed_models_in_one_namespace(string overlay)
    {
        var docs = Build(overlay);
        var kinds = docs.Select(d => d.GetType().Name).Order().ToList();
        Assert.Equal(
            new[] { "ScaledObject", "ScaledObject", "V1Deployment", "V1Deployment", "V1Namespace", "V1Role", "V1RoleBinding", "V1Secret", "V1Secret", "V1Service", "V1ServiceAccount" },
            kinds);
        var ns = docs.OfType<V1Namespace>().Single().Metadata.Name;
        Assert.Equal(JobDefaults.Namespace, ns);
        foreach (var doc in docs.OfType<k8s.IKubernetesObject<V1ObjectMeta>>().Where(d => d is not V1Namespace))
        {
            Assert.Equal(ns, doc.Metadata.NamespaceProperty);
        }
    }

    [Fact]
    public void Gpu_limits_tolerations_and_node_selector_only_in_the_gpu_overlay()
    {
        foreach (var deployment in Build("cpu").OfType<V1Deployment>())
        {
            var pod = deployment.Spec.Template.Spec;
            Assert.Null(pod.Tolerations);
            Assert.Null(pod.NodeSelector);
            foreach (var c in pod.Containers)
            {
                Assert.False(c.Resources.Limits.ContainsKey("nvidia.com/gpu"), $"{deployment.Metadata.Name} asks for a GPU in the cpu overlay");
                Assert.False(c.Resources.Requests?.ContainsKey("nvidia.com/gpu") ?? false);
            }
        }

        var cpu = Build("cpu");
        Assert.Equal("mlfunctions/gpu-worker:cpu", Container(Deployment(cpu, "mlfunctions-gpu-worker")).Image);
        Assert.Equal("0", Env(Container(Deployment(cpu, "mlfunctions-functions")), "Dispatch__Kubernetes__Gpus"));

        var gpu = Build("gpu");
        var worker = Deployment(gpu, "mlfunctions-gpu-worker");
        var wc = Container(worker);
        Assert.Equal("1", wc.Resources.Limits["nvidia.com/gpu"].ToString());
        Assert.True(wc.Resources.Limits.ContainsKey("memory"), "the patch merges into the base limits, not over them");
        Assert.Equal("mlfunctions/gpu-worker:cuda", wc.Image);
        Assert.Equal("cuda", Env(wc, "Worker__Device"));
        Assert.Contains(worker.Spec.Template.Spec.Tolerations, t => t.Key == "nvidia.com/gpu" && t.Effect == "NoSchedule");
        Assert.NotEmpty(worker.Spec.Template.Spec.NodeSelector);
        Assert.NotNull(wc.Env.Single(e => e.Name == "AzureWebJobsStorage").ValueFrom);

        var functions = Container(Deployment(gpu, "mlfunctions-functions"));
        Assert.Equal("1", Env(functions, "Dispatch__Kubernetes__Gpus"));
        Assert.Equal("mlfunctions/gpu-worker:cuda", Env(functions, "Dispatch__Kubernetes__Image"));
        Assert.False(functions.Resources.Limits.ContainsKey("nvidia.com/gpu"));
    }

    /// <summary>The task hub's queues, derived from host.json as the Durable Azure Storage provider names them.</summary>
    private static (List<string> Control, string WorkItems) HubQueues()
    {
        using var host = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "host.json")));
        var durable = host.RootElement.GetProperty("extensions").GetProperty("durableTask");
        var hub = durable.GetProperty("hubName").GetString()!.ToLowerInvariant();
        var partitions = durable.GetProperty("storageProvider").GetProperty("partitionCount").GetInt32();
        return (Enumerable.Range(0, partitions).Select(i => $"{hub}-control-{i:00}").ToList(), $"{hub}-workitems");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Keda_triggers_point_at_the_queues_the_code_uses(string overlay)
    {
        var docs = Build(overlay);
        var (control, workItems) = HubQueues();
        Assert.Equal(4, control.Count);

        var functionsScaler = docs.OfType<ScaledObject>().Single(s => s.Spec.ScaleTargetRef.Name == "mlfunctions-functions");
        Assert.Equal(control.Append(workItems).Order(), functionsScaler.Spec.Triggers.Select(t => t.Metadata["queueName"]).Order());
        Assert.True(functionsScaler.Spec.MinReplicaCount >= 1, "HTTP triggers need a running replica");

        var workerScaler = docs.OfType<ScaledObject>().Single(s => s.Spec.ScaleTargetRef.Name == "mlfunctions-gpu-worker");
        var trigger = Assert.Single(workerScaler.Spec.Triggers);
        Assert.Equal(TrainingStorage.JobsQueue, trigger.Metadata["queueName"]);
        Assert.Equal(new DispatchOptions().JobsQueue, trigger.Metadata["queueName"]);
        Assert.Equal("all", trigger.Metadata["queueLengthStrategy"]);
        Assert.Equal(0, workerScaler.Spec.MinReplicaCount);

        foreach (var scaler in docs.OfType<ScaledObject>())
        {
            var target = Deployment(docs, scaler.Spec.ScaleTargetRef.Name);
            foreach (var t in scaler.Spec.Triggers)
            {
                Assert.Equal("azure-queue", t.Type);
                Assert.Equal("AzureWebJobsStorage", t.Metadata["connectionFromEnv"]);
                Assert.False(t.Metadata.ContainsKey("connection"), "connection strings never go into trigger metadata");
            }

            // KEDA resolves connectionFromEnv from the target's container.
            Assert.Contains(Container(target).Env, e => e.Name == "AzureWebJobsStorage");
        }
    }

    /// <summary>The verbs of the Kubernetes calls in the dispatcher's source (Create/Read/List/Delete/...NamespacedJob).</summary>
    private static SortedSet<string> DispatcherVerbs()
    {
        var source = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "Activities", "Training", "DispatchTrainingActivity.cs"));
        var groups = Regex.Matches(source, @"client\.(\w+)\.").Select(m => m.Groups[1].Value).Distinct().ToList();
        Assert.Equal(["BatchV1"], groups);
        var verbs = new SortedSet<string>();
        foreach (Match m in Regex.Matches(source, @"\.BatchV1\.(\w+?)Namespaced(\w+?)(?:WithHttpMessages)?Async\("))
        {
            Assert.Equal("Job", m.Groups[2].Value);
            verbs.Add(m.Groups[1].Value switch
            {
                "Create" => "create", "Read" => "get", "List" => "list", "Delete" => "delete",
                "Patch" => "patch", "Replace" => "update", var other => throw new InvalidOperationException($"unmapped call {other}"),
            });
        }

        if (Regex.IsMatch(source, @"watch:\s*true|\.Watch")) verbs.Add("watch");
        return verbs;
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Rbac_grants_exactly_the_dispatchers_verbs_on_batch_jobs(string overlay)
    {
        var docs = Build(overlay);
        var expected = DispatcherVerbs();
        Assert.Equal(["create", "delete"], expected); // what infra/README.md documents

        var sa = docs.OfType<V1ServiceAccount>().Single();
        Assert.Equal(JobDefaults.ServiceAccount, sa.Metadata.Name);
        Assert.False(sa.AutomountServiceAccountToken, "Job pods run as this account and need no token");

        var role = docs.OfType<V1Role>().Single();
        var rule = Assert.Single(role.Rules);
        Assert.Equal(["batch"], rule.ApiGroups);
        Assert.Equal(["jobs"], rule.Resources);
        Assert.Null(rule.ResourceNames);
        Assert.Equal(expected, new SortedSet<string>(rule.Verbs));

        var binding = docs.OfType<V1RoleBinding>().Single();
        Assert.Equal(("Role", role.Metadata.Name), (binding.RoleRef.Kind, binding.RoleRef.Name));
        var subject = Assert.Single(binding.Subjects);
        Assert.Equal(("ServiceAccount", sa.Metadata.Name, sa.Metadata.NamespaceProperty), (subject.Kind, subject.Name, subject.NamespaceProperty));

        // The dispatcher runs in the Functions pod, with that account's token.
        var functions = Deployment(docs, "mlfunctions-functions").Spec.Template.Spec;
        Assert.Equal(sa.Metadata.Name, functions.ServiceAccountName);
        Assert.True(functions.AutomountServiceAccountToken);
        Assert.Equal("metadata.namespace", Container(Deployment(docs, "mlfunctions-functions")).Env.Single(e => e.Name == "Dispatch__Kubernetes__Namespace").ValueFrom.FieldRef.FieldPath);
        Assert.False(Deployment(docs, "mlfunctions-gpu-worker").Spec.Template.Spec.AutomountServiceAccountToken);
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Probes_ports_and_resources(string overlay)
    {
        var docs = Build(overlay);
        var apiRoutes = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "Api", "ApiRoutes.cs"));
        // The probes use KServe's V2 health routes, which both hosts serve without a function key (probes send none).
        string Const(string name) => "/" + Regex.Match(apiRoutes, $@"const string {name} = ""([^""]+)""").Groups[1].Value;
        var (live, ready) = (Const("V2HealthLive"), Const("V2HealthReady"));
        Assert.Equal(("/v2/health/live", "/v2/health/ready"), (live, ready));
        Assert.Matches(@"Anonymous \{ get; \} = \[[^\]]*ServingRoutes\.V2HealthLive, ServingRoutes\.V2HealthReady", apiRoutes);

        var functions = Container(Deployment(docs, "mlfunctions-functions"));
        Assert.Equal(live, functions.StartupProbe.HttpGet.Path);
        Assert.Equal(ready, functions.ReadinessProbe.HttpGet.Path);
        Assert.Equal(live, functions.LivenessProbe.HttpGet.Path);
        foreach (var probe in new[] { functions.StartupProbe, functions.ReadinessProbe, functions.LivenessProbe })
        {
            Assert.Equal("http", probe.HttpGet.Port.Value);
        }

        Assert.Equal(80, functions.Ports.Single(p => p.Name == "http").ContainerPort);
        var service = docs.OfType<V1Service>().Single();
        Assert.Equal("http", service.Spec.Ports.Single().TargetPort.Value);
        Assert.Equal(Deployment(docs, "mlfunctions-functions").Spec.Selector.MatchLabels, service.Spec.Selector);

        foreach (var c in docs.OfType<V1Deployment>().SelectMany(d => d.Spec.Template.Spec.Containers))
        {
            foreach (var resources in new[] { c.Resources.Requests, c.Resources.Limits })
            {
                Assert.True(resources.ContainsKey("cpu") && resources.ContainsKey("memory"), $"{c.Name}: cpu and memory requests and limits");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public void Secrets_are_referenced_never_inlined(string overlay)
    {
        var docs = Build(overlay);
        var secrets = docs.OfType<V1Secret>().ToDictionary(s => s.Metadata.Name);
        Assert.True(secrets[JobDefaults.StorageSecretName].Data.ContainsKey(JobDefaults.StorageSecretKey));
        Assert.True(secrets["mlfunctions-function-keys"].Data.ContainsKey("host.master"));

        foreach (var d in docs.OfType<V1Deployment>())
        {
            var c = Container(d);
            var storage = c.Env.Single(e => e.Name == "AzureWebJobsStorage");
            Assert.Null(storage.Value);
            Assert.Equal((JobDefaults.StorageSecretName, JobDefaults.StorageSecretKey), (storage.ValueFrom.SecretKeyRef.Name, storage.ValueFrom.SecretKeyRef.Key));
            foreach (var e in c.Env.Where(e => e.Value is not null))
            {
                Assert.DoesNotMatch(@"(?i)AccountKey|SharedAccessSignature|EndpointsProtocol|InstrumentationKey|UseDevelopmentStorage", e.Value);
            }

            Assert.Null(c.EnvFrom);
        }

        var functions = Deployment(docs, "mlfunctions-functions").Spec.Template.Spec;
        Assert.Equal("mlfunctions-function-keys", functions.Volumes.Single(v => v.Name == "functions-keys").Secret.SecretName);
        Assert.Equal("/run/secrets/functions-keys", Container(Deployment(docs, "mlfunctions-functions")).VolumeMounts.Single().MountPath);

        // The generators read git-ignored env files; their committed examples carry keys without values.
        var gitignore = File.ReadAllLines(Path.Combine(K8s, "base", ".gitignore"));
        foreach (var env in new[] { "storage.env", "function-keys.env" })
        {
            Assert.Contains(env, gitignore);
            Assert.All(Kustomize.ReadEnvFile(Path.Combine(K8s, "base", env + ".example")), kv => Assert.Equal("", kv.Value));
        }
    }

    [Fact]
    public void No_secret_in_plain_text_under_infra()
    {
        var patterns = new[]
        {
            @"AccountKey=[A-Za-z0-9+/]{16,}", // a literal key; templates use AccountKey=${...} / {2}
            @"Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq", // Azurite's well-known key
            @"SharedAccessSignature=\S", @"[?&]sig=[A-Za-z0-9%]{10,}",
            @"InstrumentationKey=[0-9a-fA-F]{8}-", @"-----BEGIN [A-Z ]*PRIVATE KEY-----",
            @"(?m)^\s*(stringData|data):\s*$", // no Secret bodies in manifests
        };
        var files = Directory.EnumerateFiles(Path.Combine(RepoPaths.Root, "infra"), "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) is not ("storage.env" or "function-keys.env")) // git-ignored, local only
            .ToList();
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            foreach (var pattern in patterns)
            {
                Assert.False(Regex.IsMatch(text, pattern), $"{Path.GetRelativePath(RepoPaths.Root, file)} matches {pattern}");
            }
        }
    }
}

public sealed class DockerfileTests
{
    private sealed record Stage(string Name, string Base, List<(string Instruction, string Args)> Lines);

    /// <summary>Stages of a Dockerfile with global ARG defaults substituted into FROM lines.</summary>
    private static List<Stage> Parse(string name, IReadOnlyDictionary<string, string>? buildArgs = null)
    {
        var text = File.ReadAllText(Path.Combine(RepoPaths.Root, "infra", "docker", name));
        var joined = Regex.Replace(text, @"\\\r?\n", " ");
        var args = new Dictionary<string, string>();
        var stages = new List<Stage>();
        foreach (var raw in joined.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var split = line.IndexOf(' ');
            var (instruction, rest) = (line[..split].ToUpperInvariant(), line[(split + 1)..].Trim());
            if (instruction == "ARG" && stages.Count == 0)
            {
                var eq = rest.IndexOf('=');
                var key = eq < 0 ? rest : rest[..eq];
                args[key] = buildArgs?.GetValueOrDefault(key) ?? (eq < 0 ? "" : rest[(eq + 1)..]);
            }
            else if (instruction == "FROM")
            {
                var parts = Regex.Replace(rest, @"\$\{(\w+)\}", m => args[m.Groups[1].Value]).Split(' ', StringSplitOptions.RemoveEmptyEntries);
                stages.Add(new Stage(parts.Length == 3 ? parts[2] : "", parts[0], []));
            }
            else
            {
                stages[^1].Lines.Add((instruction, rest));
            }
        }

        return stages;
    }

    private static Stage Final(List<Stage> stages)
    {
        var stage = stages[^1];
        // FROM an earlier stage: the base image is that stage's.
        while (stages.FirstOrDefault(s => s.Name == stage.Base) is { } parent && parent != stage) stage = parent with { Lines = [.. parent.Lines, .. stage.Lines] };
        return stage;
    }

    [Fact]
    public void Functions_image_is_the_isolated_functions_host_with_the_published_app()
    {
        var stages = Parse("Dockerfile.functions");
        Assert.Contains(stages[0].Lines, l => l.Instruction == "RUN" && l.Args.Contains("dotnet publish src/Functions"));
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", stages[0].Base);
        var final = Final(stages);
        Assert.Equal("mcr.microsoft.com/azure-functions/dotnet-isolated:4-dotnet-isolated10.0", final.Base);
        Assert.Equal(["80"], final.Lines.Where(l => l.Instruction == "EXPOSE").Select(l => l.Args));
        Assert.Equal("[\"/opt/startup/start_nonappservice.sh\"]", final.Lines.Single(l => l.Instruction is "CMD" or "ENTRYPOINT").Args);
        Assert.Contains(final.Lines, l => l.Instruction == "COPY" && l.Args.EndsWith("/home/site/wwwroot"));
        Assert.Contains(final.Lines, l => l.Instruction == "ENV" && l.Args.Contains("AzureWebJobsScriptRoot=/home/site/wwwroot"));
    }

    [Theory]
    [InlineData(null, "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("cpu", "mcr.microsoft.com/dotnet/aspnet:10.0")]
    [InlineData("cuda", "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04")]
    public void Worker_image_selects_the_torch_backend_by_build_argument(string? backend, string expectedBase)
    {
        var stages = Parse("Dockerfile.worker", backend is null ? null : new Dictionary<string, string> { ["TORCH_BACKEND"] = backend });
        var final = Final(stages);
        Assert.Equal(expectedBase, final.Base);
        Assert.DoesNotContain(final.Lines, l => l.Instruction == "EXPOSE");
        var assembly = Regex.Match(File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "GpuWorker", "GpuWorker.csproj")), "<AssemblyName>([^<]+)</AssemblyName>").Groups[1].Value;
        Assert.Equal($"[\"dotnet\", \"/app/{assembly}.dll\"]", final.Lines.Single(l => l.Instruction == "ENTRYPOINT").Args);
        Assert.Contains(stages[0].Lines, l => l.Instruction == "RUN" && l.Args.Contains("dotnet publish src/GpuWorker") && l.Args.Contains("-p:TorchBackend=${TORCH_BACKEND}"));
    }

    [Fact]
    public void Worker_project_swaps_torchsharp_only_for_the_cuda_backend()
    {
        var csproj = File.ReadAllText(Path.Combine(RepoPaths.Root, "src", "GpuWorker", "GpuWorker.csproj"));
        Assert.Contains("<PackageReference Include=\"TorchSharp-cpu\" Condition=\"'$(TorchBackend)' != 'cuda'\" />", csproj);
        Assert.Matches("<PackageReference Include=\"TorchSharp-cuda-linux\" [^>]*Condition=\"'\\$\\(TorchBackend\\)' == 'cuda'\"", csproj);
    }
}

public sealed class ArmTemplateTests
{
    private static readonly string Bicep = Path.Combine(RepoPaths.Root, "infra", "bicep");

    [Fact]
    public void Template_has_the_flex_consumption_app_its_storage_insights_and_settings()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Bicep, "main.json")));
        var resources = doc.RootElement.GetProperty("resources").EnumerateArray().ToList();
        JsonElement Resource(string type) => resources.Single(r => r.GetProperty("type").GetString() == type);

        Assert.Equal("StorageV2", Resource("Microsoft.Storage/storageAccounts").GetProperty("kind").GetString());
        Resource("Microsoft.Insights/components");
        Resource("Microsoft.Storage/storageAccounts/blobServices/containers");
        var plan = Resource("Microsoft.Web/serverfarms");
        Assert.Equal("FC1", plan.GetProperty("sku").GetProperty("name").GetString());
        Assert.Equal("FlexConsumption", plan.GetProperty("sku").GetProperty("tier").GetString());

        var site = Resource("Microsoft.Web/sites");
        Assert.Contains("functionapp", site.GetProperty("kind").GetString());
        var props = site.GetProperty("properties");
        var config = props.GetProperty("functionAppConfig");
        Assert.Equal("dotnet-isolated", config.GetProperty("runtime").GetProperty("name").GetString());
        var settings = props.GetProperty("siteConfig").GetProperty("appSettings").EnumerateArray()
            .Select(s => s.GetProperty("name").GetString()!).ToList();
        Assert.Superset(new HashSet<string> { "AzureWebJobsStorage", "APPLICATIONINSIGHTS_CONNECTION_STRING", "Dispatch__Mode" }, settings.ToHashSet());
        // Flex Consumption rejects these: the runtime is functionAppConfig.runtime.
        Assert.DoesNotContain("FUNCTIONS_WORKER_RUNTIME", settings);
        Assert.DoesNotContain("FUNCTIONS_EXTENSION_VERSION", settings);
        var deploymentSetting = config.GetProperty("deployment").GetProperty("storage").GetProperty("authentication")
            .GetProperty("storageAccountConnectionStringName").GetString();
        Assert.Contains(deploymentSetting!, settings);

        // main.bicep is the source; main.json is its hand-written twin: same resource types and settings.
        var bicep = File.ReadAllText(Path.Combine(Bicep, "main.bicep"));
        foreach (var r in resources) Assert.Contains($"'{r.GetProperty("type").GetString()}@{r.GetProperty("apiVersion").GetString()}'", bicep);
        Assert.Equal(resources.Count, Regex.Matches(bicep, @"^resource \w+ '", RegexOptions.Multiline).Count);
        foreach (var s in settings) Assert.Contains($"{{ name: '{s}'", bicep);
        Assert.Equal(settings.Count, Regex.Matches(bicep, @"\{ name: '\w+', value:").Count);
    }

    [Fact]
    public void A_lifecycle_policy_expires_the_serving_request_journal_and_the_payload_logs_and_nothing_else()
    {
        var requests = MlFunctions.Serving.Online.BlobServingStore.DefaultContainerName + MlFunctions.Serving.Online.BlobServingStore.RequestsContainerSuffix;
        var payloads = new MlFunctions.Serving.PayloadLoggingOptions().Container;
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Bicep, "main.json")));
        var policy = doc.RootElement.GetProperty("resources").EnumerateArray()
            .Single(r => r.GetProperty("type").GetString() == "Microsoft.Storage/storageAccounts/managementPolicies");
        using var cli = JsonDocument.Parse(File.ReadAllText(Path.Combine(RepoPaths.Root, "infra", "storage-lifecycle.json")));
        foreach (var rules in new[] { policy.GetProperty("properties").GetProperty("policy").GetProperty("rules"), cli.RootElement.GetProperty("rules") })
        {
            var prefixes = rules.EnumerateArray()
                .SelectMany(r => r.GetProperty("definition").GetProperty("filters").GetProperty("prefixMatch").EnumerateArray().Select(p => p.GetString()))
                .ToHashSet();
            Assert.Equal(new HashSet<string?> { requests + "/", payloads + "/" }, prefixes);
            Assert.All(rules.EnumerateArray(), r => Assert.True(r.GetProperty("definition").GetProperty("actions").GetProperty("baseBlob").TryGetProperty("delete", out _)));
        }
        Assert.Contains("'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01'", File.ReadAllText(Path.Combine(Bicep, "main.bicep")));
    }
}
