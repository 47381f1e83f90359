package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// jsonMarshaler writes proto field names (snake_case, as in the OpenAPI
// document) and every field, so clients see zero values instead of missing
// keys. Unknown JSON fields in request bodies are an error.
var jsonMarshaler = &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
	MarshalOptions: protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true},
}}

var setQueryParser sync.Once

func newGateway() *runtime.ServeMux {
	// The gateway's query parser is process-global; set it once, before any
	// gateway serves, so concurrent servers (tests) do not race on it.
	setQueryParser.Do(func() {
		// The option only assigns the global; it never touches its mux.
		runtime.SetQueryParameterParser(strictQueryParser{})(nil)
	})
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, jsonMarshaler),
		runtime.WithErrorHandler(errorHandler),
		runtime.WithRoutingErrorHandler(routingErrorHandler),
		runtime.WithForwardResponseOption(httpCodeFromHeader), // hosts.go
	)
}

// errorHandler is the gateway's default (JSON body {code, message, details},
// gRPC code mapped to HTTP status) with a proper Bearer challenge on 401: the
// default puts the error message in WWW-Authenticate.
func errorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, challengeWriter{w}, r, err)
}

type challengeWriter struct{ http.ResponseWriter }

func (w challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="fleetstream"`)
	}
	w.ResponseWriter.WriteHeader(code)
}

// routingErrorHandler answers requests that match no route with a JSON
// error that says what to do, and a wrong method with 405 (the default
// answers 501).
func routingErrorHandler(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusNotFound:
		err = status.Errorf(codes.NotFound, "no route for %s %s: see /openapi.json for the routes of this API", r.Method, r.URL.Path)
	case http.StatusMethodNotAllowed:
		err = &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: status.Errorf(codes.Unimplemented, "method %s is not allowed on %s: see /openapi.json", r.Method, r.URL.Path)}
	case http.StatusBadRequest:
		err = status.Errorf(codes.InvalidArgument, "malformed request path %q", r.URL.Path)
	default:
		err = status.Errorf(codes.Internal, "routing %s %s failed with HTTP %d", r.Method, r.URL.Path, httpStatus)
	}
	errorHandler(ctx, mux, m, w, r, err)
}

// writeError writes err the way the gateway writes errors, for the routes
// served beside it.
func writeError(mux *runtime.ServeMux, w http.ResponseWriter, r *http.Request, err error) {
	errorHandler(r.Context(), mux, jsonMarshaler, w, r, err)
}

// strictQueryParser rejects query parameters that name no field of the
// request: a misspelt filter (?helth=critical) would otherwise be ignored
// and return the unfiltered list as if it were the answer.
type strictQueryParser struct{}

func (strictQueryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	fields := msg.ProtoReflect().Descriptor().Fields()
	for key := range values {
		name, _, _ := strings.Cut(key, ".")
		name, _, _ = strings.Cut(name, "[")
		if fields.ByName(protoreflect.Name(name)) == nil && fields.ByJSONName(name) == nil {
			return fmt.Errorf("unknown query parameter %q: %s", key, acceptedParams(fields, filter))
		}
	}
	if err := (&runtime.DefaultQueryParser{}).Parse(msg, values, filter); err != nil {
		return fmt.Errorf("invalid query parameter: %w", err)
	}
	return nil
}

func acceptedParams(fields protoreflect.FieldDescriptors, filter *utilities.DoubleArray) string {
	var names []string
	for i := range fields.Len() {
		name := string(fields.Get(i).Name())
		// Path parameters are in filter; they are not query parameters.
		if !filter.HasCommonPrefix([]string{name}) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return "this route takes no query parameters"
	}
	return "this route accepts " + strings.Join(names, ", ")
}
