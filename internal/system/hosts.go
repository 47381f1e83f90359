package system

import (
	"context"
	"fmt"
	"time"

	"github.com/fleetstream/fleetstream/api"
	"github.com/fleetstream/fleetstream/internal/kafka"
)

// hostsService is the API's HostsService: host commands (DELETE
// /api/v1/hosts/{id}) checked against hosts, produced to the host command
// topic.
func hostsService(ctx context.Context, cfg Config, hosts api.HostReader) (api.Service, error) {
	client, err := kafka.NewClient(cfg.Brokers, cfg.Kafka.Opts()...)
	if err != nil {
		return api.Service{}, fmt.Errorf("hosts API kafka client: %w", err)
	}
	context.AfterFunc(ctx, client.Close)
	srv := api.NewHostsServer(hosts, api.KafkaHostCommands(client, cfg.Topics.HostCommands), time.Now, cfg.Logger.With("role", "api", "service", "hosts"))
	return srv.APIService(), nil
}
