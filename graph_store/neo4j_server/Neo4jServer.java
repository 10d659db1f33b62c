import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.graphdb.QueryExecutionException;

/**
 * A Neo4j Community server in one JVM: the database with its Bolt connector, configured by the
 * properties file graph_store/embedded_neo4j.py writes. Users and passwords arrive on standard
 * input, one "user<TAB>password" a line, so no secret shows in the process list or a file here.
 *
 * Usage: java -cp CLASSPATH Neo4jServer.java HOME CONFIG
 */
public class Neo4jServer {
    // The server's own transaction timeout is meant for clients' queries; setting up users on a
    // cold JVM on a busy machine may take longer.
    private static final Duration SETUP_TIMEOUT = Duration.ofMinutes(5);

    public static void main(String[] args) throws Exception {
        try {
            serve(args);
        } catch (Exception failed) {
            // Neo4j's own threads would keep a half-started JVM alive: exit, so the caller sees it.
            failed.printStackTrace();
            System.exit(1);
        }
    }

    private static void serve(String[] args) throws Exception {
        DatabaseManagementService service = new DatabaseManagementServiceBuilder(Path.of(args[0]))
            .loadPropertiesFromFile(Path.of(args[1]))
            .build();
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM and SIGINT shut the databases down cleanly, checkpointing the store.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            service.shutdown();
            stopped.countDown();
        }));
        GraphDatabaseService system = service.database("system");
        var users = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line = users.readLine(); line != null; line = users.readLine()) {
            String[] user = line.split("\t", 2);
            setPassword(system, user[0], user[1]);
        }
        for (String name : service.listDatabases()) {
            // A database whose store files cannot be opened fails alone; the server must not
            // report ready without it. build() has started them all: no long wait is needed.
            if (!service.database(name).isAvailable(Duration.ofSeconds(30).toMillis())) {
                throw new IllegalStateException("database " + name + " is not available: its "
                    + "store files could not be opened (see " + args[0] + "/logs/debug.log)");
            }
        }
        System.out.println("donor-match: Neo4j ready");
        System.out.flush();
        stopped.await();
    }

    private static void setPassword(GraphDatabaseService system, String user, String password) {
        Map<String, Object> params = Map.of("user", user, "password", password);
        boolean exists = system.executeTransactionally(
            "SHOW USERS YIELD user WHERE user = $user RETURN count(*) AS n", params,
            result -> ((Number) result.next().get("n")).longValue() > 0, SETUP_TIMEOUT);
        if (!exists) {
            system.executeTransactionally(
                "CREATE USER $user SET PASSWORD $password CHANGE NOT REQUIRED", params,
                result -> null, SETUP_TIMEOUT);
            return;
        }
        try {
            system.executeTransactionally(
                "ALTER USER $user SET PASSWORD $password CHANGE NOT REQUIRED", params,
                result -> null, SETUP_TIMEOUT);
        } catch (QueryExecutionException unchanged) {
            // Neo4j refuses to set the password a user already has (the caller checked the length,
            // the other argument error): nothing to change.
            if (!unchanged.getStatusCode().equals("Neo.ClientError.Statement.ArgumentError")) {
                throw unchanged;
            }
        }
    }
}
