using System.Text;
using k8s;
using k8s.Models;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace MlFunctions.Infra.Tests;

/// <summary>
/// A narrow kustomize: exactly the features infra/k8s uses (resources, namespace, images, strategic-merge
/// patches by path, secretGenerator from env files without name hashes). Anything else in a kustomization
/// fails the render, so this stays in step with what `kubectl kustomize` would produce for these files.
/// Secret generators read the committed <c>*.env.example</c> (keys, no values): the real env files are
/// git-ignored and absent in CI.
/// </summary>
public static class Kustomize
{
    private static readonly HashSet<string> Supported =
        ["apiVersion", "kind", "namespace", "resources", "images", "patches", "secretGenerator", "generatorOptions"];

    /// <summary>Merge keys of the strategic-merge lists the patches touch; other lists are replaced.</summary>
    private static readonly Dictionary<string, string> MergeKeys = new()
    {
        ["containers"] = "name", ["initContainers"] = "name", ["env"] = "name", ["volumes"] = "name",
        ["volumeMounts"] = "mountPath", ["ports"] = "containerPort",
    };

    public static readonly Dictionary<string, Type> TypeMap = new()
    {
        ["v1/Namespace"] = typeof(V1Namespace),
        ["v1/ServiceAccount"] = typeof(V1ServiceAccount),
        ["v1/Service"] = typeof(V1Service),
        ["v1/Secret"] = typeof(V1Secret),
        ["apps/v1/Deployment"] = typeof(V1Deployment),
        ["rbac.authorization.k8s.io/v1/Role"] = typeof(V1Role),
        ["rbac.authorization.k8s.io/v1/RoleBinding"] = typeof(V1RoleBinding),
        ["keda.sh/v1alpha1/ScaledObject"] = typeof(ScaledObject),
    };

    /// <summary>Renders a kustomization folder and parses every document into the typed models (strict).</summary>
    public static List<object> Build(string dir)
    {
        var yaml = string.Join("---\n", Render(dir).Select(d => new SerializerBuilder().Build().Serialize(d)));
        return KubernetesYaml.LoadAllFromString(yaml, TypeMap, strict: true);
    }

    public static List<Dictionary<object, object>> Render(string dir)
    {
        var k = LoadDocs(Path.Combine(dir, "kustomization.yaml")).Single();
        foreach (var key in k.Keys.Cast<string>())
        {
            if (!Supported.Contains(key)) throw new NotSupportedException($"{dir}: kustomization field '{key}' is not rendered by the test");
        }

        var docs = new List<Dictionary<object, object>>();
        foreach (var r in List(k, "resources").Cast<string>())
        {
            var path = Path.GetFullPath(Path.Combine(dir, r));
            docs.AddRange(Directory.Exists(path) ? Render(path) : LoadDocs(path));
        }

        if (k.ContainsKey("secretGenerator"))
        {
            var options = k.TryGetValue("generatorOptions", out var o) ? (Dictionary<object, object>)o : [];
            if (!options.TryGetValue("disableNameSuffixHash", out var off) || !bool.Parse((string)off))
                throw new NotSupportedException("secretGenerator with name hashes is not rendered by the test");
            foreach (var g in List(k, "secretGenerator").Cast<Dictionary<object, object>>())
            {
                var data = new Dictionary<object, object>();
                foreach (var env in List(g, "envs").Cast<string>())
                {
                    foreach (var (key, _) in ReadEnvFile(Path.Combine(dir, env + ".example"))) data[key] = "";
                }

                docs.Add(new Dictionary<object, object>
                {
                    ["apiVersion"] = "v1", ["kind"] = "Secret", ["type"] = "Opaque",
                    ["metadata"] = new Dictionary<object, object> { ["name"] = g["name"] },
                    ["data"] = data,
                });
            }
        }

        foreach (var p in List(k, "patches").Cast<Dictionary<object, object>>())
        {
            if (p.Keys.Cast<string>().Any(key => key != "path")) throw new NotSupportedException("only patches: - path: are rendered");
            foreach (var patch in LoadDocs(Path.Combine(dir, (string)p["path"])))
            {
                var target = docs.SingleOrDefault(d => Equals(d["kind"], patch["kind"]) && Equals(Name(d), Name(patch)))
                    ?? throw new InvalidOperationException($"patch {p["path"]}: no {patch["kind"]} {Name(patch)}");
                Merge(target, patch);
            }
        }

        foreach (var image in List(k, "images").Cast<Dictionary<object, object>>())
        {
            foreach (var container in docs.SelectMany(Containers))
            {
                var current = (string)container["image"];
                var colon = current.LastIndexOf(':');
                var (name, tag) = colon > 0 ? (current[..colon], current[(colon + 1)..]) : (current, "latest");
                if (name != (string)image["name"]) continue;
                name = image.TryGetValue("newName", out var n) ? (string)n : name;
                tag = image.TryGetValue("newTag", out var t) ? (string)t : tag;
                container["image"] = $"{name}:{tag}";
            }
        }

        if (k.TryGetValue("namespace", out var ns))
        {
            foreach (var d in docs.Where(d => (string)d["kind"] != "Namespace"))
            {
                ((Dictionary<object, object>)d["metadata"])["namespace"] = ns;
                if ((string)d["kind"] == "RoleBinding")
                {
                    foreach (var s in List(d, "subjects").Cast<Dictionary<object, object>>().Where(s => (string)s["kind"] == "ServiceAccount"))
                        s["namespace"] = ns;
                }
            }
        }

        return docs;
    }

    public static List<Dictionary<object, object>> LoadDocs(string path)
    {
        var parser = new YamlDotNet.Core.Parser(new StringReader(File.ReadAllText(path)));
        var deserializer = new DeserializerBuilder().Build();
        parser.Consume<YamlDotNet.Core.Events.StreamStart>();
        var docs = new List<Dictionary<object, object>>();
        while (parser.Accept<YamlDotNet.Core.Events.DocumentStart>(out _))
        {
            if (deserializer.Deserialize<Dictionary<object, object>?>(parser) is { } doc) docs.Add(doc);
        }

        return docs;
    }

    public static IEnumerable<(string Key, string Value)> ReadEnvFile(string path) =>
        File.ReadAllLines(path)
            .Select(l => l.Trim())
            .Where(l => l.Length > 0 && !l.StartsWith('#'))
            .Select(l => (l[..l.IndexOf('=')], l[(l.IndexOf('=') + 1)..]));

    private static List<object> List(Dictionary<object, object> map, string key) =>
        map.TryGetValue(key, out var v) && v is List<object> list ? list : [];

    private static string? Name(Dictionary<object, object> doc) =>
        doc.TryGetValue("metadata", out var m) && ((Dictionary<object, object>)m).TryGetValue("name", out var n) ? (string)n : null;

    private static IEnumerable<Dictionary<object, object>> Containers(Dictionary<object, object> doc) =>
        doc.TryGetValue("spec", out var spec) && ((Dictionary<object, object>)spec).TryGetValue("template", out var t)
            && ((Dictionary<object, object>)t).TryGetValue("spec", out var podSpec)
            ? List((Dictionary<object, object>)podSpec, "containers").Cast<Dictionary<object, object>>()
            : [];

    private static void Merge(Dictionary<object, object> target, Dictionary<object, object> patch)
    {
        foreach (var (key, value) in patch)
        {
            if (value is Dictionary<object, object> pm && target.TryGetValue(key, out var tv) && tv is Dictionary<object, object> tm)
            {
                Merge(tm, pm);
            }
            else if (value is List<object> pl && target.TryGetValue(key, out var tl) && tl is List<object> existing
                     && MergeKeys.TryGetValue((string)key, out var mergeKey))
            {
                foreach (var item in pl.Cast<Dictionary<object, object>>())
                {
                    var match = existing.Cast<Dictionary<object, object>>().FirstOrDefault(e => Equals(e[mergeKey], item[mergeKey]));
                    if (match is null) existing.Add(item);
                    else Merge(match, item);
                }
            }
            else
            {
                target[key] = value;
            }
        }
    }
}
