// A scheduler that speaks only application/x-protobuf, built on Mesos's own
// generated Java classes (org.apache.mesos.v1.*, from the Mesos 1.4.3 jar
// that pyspark 3.5.9 ships). It proves Pando's protobuf bytes both ways:
// SUBSCRIBE, parse the RecordIO event stream, ACCEPT an offer with a LAUNCH,
// ACKNOWLEDGE every update, and see the task finish.
//
// Usage: java -cp mesos.jar:. ProtobufScheduler <host:port> <command>
// Prints one line per step; exits 0 when the task reached TASK_FINISHED.

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;

import org.apache.mesos.v1.Protos.AgentID;
import org.apache.mesos.v1.Protos.CommandInfo;
import org.apache.mesos.v1.Protos.FrameworkID;
import org.apache.mesos.v1.Protos.FrameworkInfo;
import org.apache.mesos.v1.Protos.Offer;
import org.apache.mesos.v1.Protos.Resource;
import org.apache.mesos.v1.Protos.TaskID;
import org.apache.mesos.v1.Protos.TaskInfo;
import org.apache.mesos.v1.Protos.TaskState;
import org.apache.mesos.v1.Protos.TaskStatus;
import org.apache.mesos.v1.Protos.Value;
import org.apache.mesos.v1.scheduler.Protos.Call;
import org.apache.mesos.v1.scheduler.Protos.Event;

public final class ProtobufScheduler {
  private static final String PROTOBUF = "application/x-protobuf";
  private static final String TASK_ID = "proto-task";

  private final String master;
  private String streamId;
  private FrameworkID frameworkId;

  private ProtobufScheduler(String master) {
    this.master = master;
  }

  public static void main(String[] args) throws Exception {
    try {
      new ProtobufScheduler(args[0]).run(args[1]);
      System.out.println("OK");
    } catch (Exception e) {
      System.out.println("FAILED " + e);
      e.printStackTrace(System.out);
      System.exit(1);
    }
  }

  private void run(String command) throws Exception {
    Call subscribe = Call.newBuilder()
        .setType(Call.Type.SUBSCRIBE)
        .setSubscribe(Call.Subscribe.newBuilder()
            .setFrameworkInfo(FrameworkInfo.newBuilder()
                .setUser("root")
                .setName("protobuf-scheduler")
                .setFailoverTimeout(0)))
        .build();

    HttpURLConnection stream = post(subscribe, false);
    int status = stream.getResponseCode();
    expect(status == 200, "SUBSCRIBE answered " + status);
    expect(PROTOBUF.equals(stream.getContentType()),
        "SUBSCRIBE Content-Type " + stream.getContentType());
    streamId = stream.getHeaderField("Mesos-Stream-Id");
    expect(streamId != null && !streamId.isEmpty(), "no Mesos-Stream-Id");
    InputStream events = stream.getInputStream();

    Event first = next(events);
    expect(first.getType() == Event.Type.SUBSCRIBED, "first event " + first.getType());
    frameworkId = first.getSubscribed().getFrameworkId();
    System.out.println("SUBSCRIBED " + frameworkId.getValue()
        + " heartbeat " + first.getSubscribed().getHeartbeatIntervalSeconds());

    Offer offer = null;
    while (offer == null) {
      Event event = next(events);
      if (event.getType() == Event.Type.OFFERS && event.getOffers().getOffersCount() > 0) {
        offer = event.getOffers().getOffers(0);
      } else {
        expect(event.getType() == Event.Type.HEARTBEAT, "unexpected event " + event.getType());
      }
    }
    System.out.println("OFFER " + offer.getAgentId().getValue());

    List<Resource> resources = new ArrayList<>();
    for (Resource r : offer.getResourcesList()) {
      if (r.getName().equals("cpus")) {
        resources.add(r.toBuilder().setScalar(Value.Scalar.newBuilder().setValue(0.1)).build());
      } else if (r.getName().equals("mem")) {
        resources.add(r.toBuilder().setScalar(Value.Scalar.newBuilder().setValue(32)).build());
      }
    }
    TaskInfo task = TaskInfo.newBuilder()
        .setName(TASK_ID)
        .setTaskId(TaskID.newBuilder().setValue(TASK_ID))
        .setAgentId(offer.getAgentId())
        .addAllResources(resources)
        .setCommand(CommandInfo.newBuilder().setShell(true).setValue(command))
        .build();
    Call accept = Call.newBuilder()
        .setType(Call.Type.ACCEPT)
        .setFrameworkId(frameworkId)
        .setAccept(Call.Accept.newBuilder()
            .addOfferIds(offer.getId())
            .addOperations(Offer.Operation.newBuilder()
                .setType(Offer.Operation.Type.LAUNCH)
                .setLaunch(Offer.Operation.Launch.newBuilder().addTaskInfos(task))))
        .build();
    call(accept);
    System.out.println("ACCEPT 202");

    while (true) {
      Event event = next(events);
      if (event.getType() != Event.Type.UPDATE) {
        continue;
      }
      TaskStatus st = event.getUpdate().getStatus();
      if (!st.getTaskId().getValue().equals(TASK_ID)) {
        continue;
      }
      System.out.println("UPDATE " + st.getState());
      if (st.hasUuid()) {
        call(Call.newBuilder()
            .setType(Call.Type.ACKNOWLEDGE)
            .setFrameworkId(frameworkId)
            .setAcknowledge(Call.Acknowledge.newBuilder()
                .setAgentId(st.getAgentId())
                .setTaskId(st.getTaskId())
                .setUuid(st.getUuid()))
            .build());
      }
      if (st.getState() == TaskState.TASK_FINISHED) {
        break;
      }
      expect(st.getState() == TaskState.TASK_STAGING || st.getState() == TaskState.TASK_STARTING
          || st.getState() == TaskState.TASK_RUNNING, "task ended " + st.getState()
          + " " + st.getMessage());
    }

    call(Call.newBuilder().setType(Call.Type.TEARDOWN).setFrameworkId(frameworkId).build());
    System.out.println("TEARDOWN 202");
    stream.disconnect();
  }

  private HttpURLConnection post(Call call, boolean withStreamId) throws IOException {
    HttpURLConnection conn =
        (HttpURLConnection) new URL("http://" + master + "/api/v1/scheduler").openConnection();
    conn.setRequestMethod("POST");
    conn.setDoOutput(true);
    conn.setConnectTimeout(10000);
    conn.setReadTimeout(60000);
    conn.setRequestProperty("Content-Type", PROTOBUF);
    conn.setRequestProperty("Accept", PROTOBUF);
    if (withStreamId) {
      conn.setRequestProperty("Mesos-Stream-Id", streamId);
    }
    byte[] body = call.toByteArray();
    conn.setFixedLengthStreamingMode(body.length);
    try (OutputStream out = conn.getOutputStream()) {
      out.write(body);
    }
    return conn;
  }

  private void call(Call call) throws IOException {
    HttpURLConnection conn = post(call, true);
    int status = conn.getResponseCode();
    expect(status == 202, call.getType() + " answered " + status);
    conn.disconnect();
  }

  // RecordIO: "<decimal length>\n<record>", chunk boundaries meaning nothing.
  private static Event next(InputStream in) throws IOException {
    long length = 0;
    int digits = 0;
    while (true) {
      int c = in.read();
      if (c < 0) {
        throw new IOException("stream ended");
      }
      if (c == '\n') {
        break;
      }
      expect(c >= '0' && c <= '9' && digits < 20, "bad RecordIO length byte " + c);
      length = length * 10 + (c - '0');
      digits++;
    }
    expect(digits > 0, "empty RecordIO length");
    ByteArrayOutputStream record = new ByteArrayOutputStream();
    byte[] buf = new byte[8192];
    while (record.size() < length) {
      int n = in.read(buf, 0, (int) Math.min(buf.length, length - record.size()));
      if (n < 0) {
        throw new IOException("stream ended inside a record");
      }
      record.write(buf, 0, n);
    }
    return Event.parseFrom(record.toByteArray());
  }

  private static void expect(boolean condition, String what) {
    if (!condition) {
      throw new IllegalStateException(what);
    }
  }
}
