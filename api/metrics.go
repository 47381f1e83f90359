package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// Metrics are the API's Prometheus metrics.
type Metrics struct {
	requestDuration *prometheus.HistogramVec
}

// NewMetrics registers the API's metrics with reg; a nil reg leaves them
// unregistered.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fleetstream_api_request_duration_seconds",
			Help:    "Duration of API calls (gRPC, and REST through the gateway) by method and gRPC status code.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "code"}),
	}
}

func (m *Metrics) observe(method string, start time.Time, err error) {
	m.requestDuration.WithLabelValues(shortMethod(method), status.Code(err).String()).Observe(time.Since(start).Seconds())
}

func (m *Metrics) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *Metrics) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}
