using Microsoft.AspNetCore.Http;
using MlFunctions.Api;
using MlFunctions.Core.Registry;
using MlFunctions.Serving;
using Xunit;

namespace MlFunctions.Tests.Http;

/// <summary>The one error map both guards use: each typed error gets its status and its own message; others are ours (null → 500).</summary>
public sealed class ApiErrorsTests
{
    private static (int, string)? Classify(Exception e, Action<HttpRequest>? request = null)
    {
        var http = new DefaultHttpContext();
        request?.Invoke(http.Request);
        return ApiErrors.Classify(e, http);
    }

    [Fact]
    public void Typed_errors_map_to_their_statuses_with_their_messages()
    {
        Assert.Equal((400, "bad spec"), Classify(new BadRequestException("bad spec")));
        Assert.Equal((404, "no run"), Classify(new BadRequestException("no run", 404)));
        Assert.Equal((400, "shape"), Classify(new InferenceError(InferenceErrorKind.InvalidInput, "shape")));
        Assert.Equal((410, "late"), Classify(new InferenceError(InferenceErrorKind.Gone, "late")));
        Assert.Equal((503, "loading"), Classify(new InferenceError(InferenceErrorKind.NotReady, "loading")));
        Assert.Equal((400, "name"), Classify(new RegistryException(RegistryErrorKind.Invalid, "name")));
        Assert.Equal((404, "v42"), Classify(new RegistryException(RegistryErrorKind.NotFound, "v42")));
    }

    [Fact]
    public void A_lost_registry_race_is_412_only_when_the_caller_stated_a_precondition()
    {
        var race = new RegistryException(RegistryErrorKind.Conflict, "moved");
        Assert.Equal((409, "moved"), Classify(race));
        Assert.Equal((412, "moved"), Classify(race, r => r.Headers.IfMatch = "\"etag\""));
        Assert.Equal((412, "moved"), Classify(race, r => r.Headers.IfNoneMatch = "*"));
    }

    [Fact]
    public void Anything_else_is_a_fault_of_ours()
    {
        Assert.Null(Classify(new InvalidOperationException("bug")));
        Assert.Null(Classify(new NullReferenceException()));
    }
}
