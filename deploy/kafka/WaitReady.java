// WaitReady waits until a Kafka broker answers a metadata request (its
// cluster has a controller and lists this broker) and consumer groups have
// a coordinator. kafka.sh runs it with the
// broker's jars on the class path (java's single-file source launcher), so
// readiness is checked with Kafka's own client, not by a port being open.
//
// usage: java -cp 'lib/*' WaitReady.java BOOTSTRAP PID TIMEOUT_SECONDS
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterResult;

public class WaitReady {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long pid = Long.parseLong(args[1]);
        Instant deadline = Instant.now().plus(Duration.ofSeconds(Long.parseLong(args[2])));
        Map<String, Object> conf = Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap,
                AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 2000,
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 3000,
                AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 200);
        String last = "no answer yet";
        try (Admin admin = Admin.create(conf)) {
            while (Instant.now().isBefore(deadline)) {
                if (ProcessHandle.of(pid).map(p -> !p.isAlive()).orElse(true)) {
                    System.err.println("broker process " + pid + " exited before answering metadata");
                    System.exit(2);
                }
                try {
                    DescribeClusterResult c = admin.describeCluster();
                    int nodes = c.nodes().get(3, TimeUnit.SECONDS).size();
                    var controller = c.controller().get(3, TimeUnit.SECONDS);
                    if (nodes == 0 || controller == null || controller.isEmpty()) {
                        last = nodes + " brokers, no controller";
                    } else {
                        // A group lookup creates __consumer_offsets; until its
                        // leader is elected, every client's first consumer
                        // group request fails with COORDINATOR_NOT_AVAILABLE.
                        admin.listConsumerGroupOffsets("kafka-sh-ready").partitionsToOffsetAndMetadata().get(5, TimeUnit.SECONDS);
                        System.out.println("cluster " + c.clusterId().get() + " answers metadata and group requests at " + bootstrap);
                        return;
                    }
                } catch (Exception e) {
                    last = e.getCause() != null ? e.getCause().toString() : e.toString();
                }
                Thread.sleep(250);
            }
        }
        System.err.println("broker at " + bootstrap + " did not answer metadata in time: " + last);
        System.exit(1);
    }
}
