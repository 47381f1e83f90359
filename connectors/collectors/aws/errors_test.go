package aws_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/fleetstream/fleetstream/connectors/collectors"
	awscollector "github.com/fleetstream/fleetstream/connectors/collectors/aws"
	"github.com/fleetstream/fleetstream/connectors/collectors/aws/mototest"
	"github.com/fleetstream/fleetstream/connectors/collectors/collectorstest"
	"github.com/fleetstream/fleetstream/connectors/tasks"
	fleetv1 "github.com/fleetstream/fleetstream/schemas/gen/fleetstream/v1"
)

func handlersFor(t *testing.T, cfg awscollector.Config) map[string]tasks.Handler {
	t.Helper()
	p, err := awscollector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := collectors.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	return reg.Handlers(collectors.Options{})
}

func runTask(ctx context.Context, hs map[string]tasks.Handler, taskType string, body any) (*collectorstest.Output, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	out := &collectorstest.Output{}
	return out, hs[taskType].Run(ctx, &fleetv1.Task{Id: "t1", Type: taskType, Payload: b, Attempt: 1}, out)
}

func TestTasksThatCannotSucceedArePermanent(t *testing.T) {
	srv := mototest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alias := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	hs := handlersFor(t, awscollector.Config{Endpoint: srv.URL, AllowedEndpoints: []string{alias}, Credentials: mototest.Credentials()})

	for _, tc := range []struct {
		name     string
		taskType string
		payload  any
		want     string
	}{
		{"other account", "aws.collect_all", collectors.CollectAll{Account: "999999999999"}, "reach account 123456789012, not 999999999999"},
		{"endpoint not allowed", "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "vpc", Endpoint: "http://127.0.0.1:9"}, "is not allowed"},
		{"unknown region", "aws.collect_all", collectors.CollectAll{Regions: []string{"us-esat-1"}}, `no region "us-esat-1"`},
		{"unknown kind", "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "lambda"}, `no kind "lambda"`},
		{"regional kind without region", "aws.collect_kind", collectors.CollectKind{Kind: "vpc"}, "collected per region"},
		{"misspelt field", "aws.collect_all", map[string]any{"region": []string{"us-east-1"}}, `unknown field "region"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runTask(ctx, hs, tc.taskType, tc.payload)
			if !tasks.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (permanent %v), want a permanent error containing %q", err, tasks.IsPermanent(err), tc.want)
			}
			if len(out.Tasks)+len(out.Discoveries) != 0 {
				t.Errorf("a failed task produced %d tasks and %d discoveries", len(out.Tasks), len(out.Discoveries))
			}
		})
	}

	// An allowed endpoint other than the configured one works.
	out, err := runTask(ctx, hs, "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "vpc", Endpoint: alias})
	if err != nil || len(out.Discoveries) != 1 {
		t.Fatalf("collect through an allowed endpoint: %v, %d discoveries", err, len(out.Discoveries))
	}
}

func TestRejectedCredentialsAndAccessDenied(t *testing.T) {
	// moto checks credentials and IAM policies after the first four calls,
	// which set up a bucket and a user allowed to list buckets and
	// describe nothing else.
	srv := mototest.StartWith(t, mototest.Options{Env: []string{"INITIAL_NO_AUTH_ACTION_COUNT=4"}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := srv.Config("us-east-1")
	if _, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("locked")}); err != nil {
		t.Fatal(err)
	}
	im := iam.NewFromConfig(cfg)
	if _, err := im.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("lister")}); err != nil {
		t.Fatal(err)
	}
	key, err := im.CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("lister")})
	if err != nil {
		t.Fatal(err)
	}
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:GetCallerIdentity","s3:ListAllMyBuckets","s3:GetBucketLocation"],"Resource":"*"}]}`
	if _, err := im.PutUserPolicy(ctx, &iam.PutUserPolicyInput{UserName: aws.String("lister"), PolicyName: aws.String("list"), PolicyDocument: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	lister := credentials.NewStaticCredentialsProvider(*key.AccessKey.AccessKeyId, *key.AccessKey.SecretAccessKey, "")

	t.Run("unknown access key", func(t *testing.T) {
		hs := handlersFor(t, awscollector.Config{Endpoint: srv.URL, Credentials: mototest.Credentials(), MaxAttempts: 2})
		_, err := runTask(ctx, hs, "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "vpc"})
		if !tasks.IsPermanent(err) || !strings.Contains(err.Error(), "InvalidClientTokenId") {
			t.Fatalf("error %v (permanent %v), want a permanent InvalidClientTokenId", err, tasks.IsPermanent(err))
		}
	})
	hs := handlersFor(t, awscollector.Config{Endpoint: srv.URL, Credentials: lister, MaxAttempts: 2})
	t.Run("access denied", func(t *testing.T) {
		_, err := runTask(ctx, hs, "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "vpc"})
		if !tasks.IsPermanent(err) || !strings.Contains(err.Error(), "describe vpcs") {
			t.Fatalf("error %v (permanent %v), want a permanent access denied on describe vpcs", err, tasks.IsPermanent(err))
		}
	})
	t.Run("tags denied on one bucket", func(t *testing.T) {
		out, err := runTask(ctx, hs, "aws.collect_kind", collectors.CollectKind{Kind: "s3_bucket"})
		if err != nil {
			t.Fatal(err)
		}
		colls, err := out.Collections()
		if err != nil {
			t.Fatal(err)
		}
		bs := colls["aws:"+mototest.Account+":global:s3_bucket"].All
		if len(bs) != 1 || bs[0].ID != "locked" || bs[0].Attributes["tags_error"] != "AccessDenied" {
			t.Errorf("buckets %+v, want bucket locked with tags_error AccessDenied", bs)
		}
	})
}

// throttler answers the first n DescribeVpcs calls with EC2's throttling
// error and forwards everything else to moto.
type throttler struct {
	n, vpcCalls atomic.Int32
	proxy       *httputil.ReverseProxy
}

func (th *throttler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if queryAction(r) == "DescribeVpcs" && th.vpcCalls.Add(1) <= th.n.Load() {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>throttled</RequestID></Response>`))
		return
	}
	th.proxy.ServeHTTP(w, r)
}

func TestThrottlingIsRetried(t *testing.T) {
	srv := mototest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	th := &throttler{proxy: httputil.NewSingleHostReverseProxy(target)}
	front := httptest.NewServer(th)
	defer front.Close()

	collect := func(t *testing.T, cfg awscollector.Config, throttles int32) (*collectorstest.Output, error) {
		th.n.Store(throttles)
		th.vpcCalls.Store(0)
		return runTask(ctx, handlersFor(t, cfg), "aws.collect_kind", collectors.CollectKind{Region: "us-east-1", Kind: "vpc"})
	}
	cfg := awscollector.Config{Endpoint: front.URL, Credentials: mototest.Credentials(), RetryMode: "standard", MaxAttempts: 4, MaxBackoff: 20 * time.Millisecond}

	// Three throttles, four attempts: the collection goes through.
	out, err := collect(t, cfg, 3)
	if err != nil {
		t.Fatalf("collect with 3 throttles and 4 attempts: %v", err)
	}
	if got := th.vpcCalls.Load(); got != 4 {
		t.Errorf("DescribeVpcs reached the server %d times, want 4", got)
	}
	colls, err := out.Collections()
	if err != nil || len(colls["aws:"+mototest.Account+":us-east-1:vpc"].All) != 1 {
		t.Errorf("collections %v, %v: want the default vpc", colls, err)
	}

	// More throttles than attempts: the task fails, retryably, so the
	// queue tries again later.
	_, err = collect(t, cfg, 100)
	if err == nil || tasks.IsPermanent(err) || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Fatalf("collect while throttled past max attempts: %v, want a retryable throttling error", err)
	}
	if got := th.vpcCalls.Load(); got != 4 {
		t.Errorf("DescribeVpcs reached the server %d times, want 4 (max attempts)", got)
	}

	// The adaptive mode (the default) retries too; after a throttle its
	// client-side rate limiter also slows the next attempts down.
	cfg.RetryMode = "adaptive"
	if _, err := collect(t, cfg, 1); err != nil {
		t.Fatalf("adaptive mode, one throttle: %v", err)
	}
	if got := th.vpcCalls.Load(); got != 2 {
		t.Errorf("adaptive mode: DescribeVpcs reached the server %d times, want 2", got)
	}
}
